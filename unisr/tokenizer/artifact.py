"""A codes directory and the frozen tokenizer it holds.

Layout::

    manifest.json          kind, dataset fingerprint and name, embedding model, sizes, unisr version, wall time
    config.json            the TokenizerConfig
    tokenizer.safetensors  encoder, decoder, codebooks and the standardisation (no pickle)
    id_table.csv           item_id,c0,...,c{L},origin (the last code is the collision token)
    health.json            the health report
    train/                 Lightning CSV metrics and checkpoints
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from unisr.config import from_mapping
from unisr.data.dataset import PreparedDataset
from unisr.errors import InputFileError, UnisrError
from unisr.io import read_json, write_json
from unisr.tokenizer.config import TokenizerConfig
from unisr.tokenizer.ids import IdTable
from unisr.tokenizer.model import RQVAE
from unisr.tokenizer.quantizer import random_codes

CODES_KIND = "unisr-codes"
FORMAT_VERSION = 1
WEIGHTS = "tokenizer.safetensors"
ID_TABLE = "id_table.csv"


class SemanticTokenizer:
    """A trained tokenizer: embeddings → residual codes, and the ID table of the items it coded."""

    def __init__(self, directory: Path | None, config: TokenizerConfig, model: RQVAE, table: IdTable, manifest: dict):
        self.directory = directory
        self.config = config
        self.model = model.eval()
        self.table = table
        self.manifest = manifest

    @property
    def dataset_fingerprint(self) -> str:
        return str(self.manifest["dataset_fingerprint"])

    def codes(self, embeddings: np.ndarray) -> np.ndarray:
        """Residual codes [n, levels] of raw sentence embeddings."""
        if not self.config.quantizer_kind.semantic:
            return random_codes(embeddings, self.config.levels, self.config.codebook_size, self.config.seed)
        with torch.no_grad():
            return self.model.codes(torch.as_tensor(np.asarray(embeddings), dtype=torch.float32)).numpy()

    def latents(self, embeddings: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Latents [n, latent_dim] of raw sentence embeddings (what the residual quantizer reads)."""
        with torch.no_grad():
            return self.model.encode(torch.as_tensor(np.asarray(embeddings), dtype=torch.float32))

    @property
    def codebooks(self) -> torch.Tensor | None:
        """Codebooks [levels, K, latent_dim] of the residual quantizer; None for random (non-semantic) codes."""
        return self.model.quantizer.codebooks.detach() if self.config.quantizer_kind.semantic else None

    def check_dataset(self, dataset: PreparedDataset) -> None:
        if dataset.fingerprint != self.dataset_fingerprint:
            raise UnisrError(
                f"{self.directory}: codes were trained on dataset {self.manifest.get('dataset_name')!r} "
                f"(fingerprint {self.dataset_fingerprint}), not on {dataset.root} (fingerprint {dataset.fingerprint}); "
                "train codes for this dataset with `unisr codes train`"
            )

    def save(self, directory: Path, health: dict | None = None) -> None:
        """Write config, weights, table, manifest (and health) into an existing directory."""
        directory = Path(directory)
        write_json(directory / "config.json", dataclasses.asdict(self.config))
        save_file({name: tensor.contiguous() for name, tensor in self.model.state_dict().items()}, str(directory / WEIGHTS))
        self.table.save(directory / ID_TABLE)
        write_json(directory / "manifest.json", self.manifest)
        if health is not None:
            write_json(directory / "health.json", health)

    @classmethod
    def load(cls, directory: str | Path, dataset: PreparedDataset | None = None) -> SemanticTokenizer:
        """Load a codes directory; with ``dataset``, refuse codes trained on another dataset."""
        directory = Path(directory)
        manifest_path = directory / "manifest.json"
        if not manifest_path.is_file():
            raise UnisrError(f"{directory}: not a codes directory (no manifest.json; run `unisr codes train`)")
        manifest = read_json(manifest_path)
        if manifest.get("kind") != CODES_KIND or manifest.get("format_version") != FORMAT_VERSION:
            raise InputFileError(manifest_path, "not a unisr codes manifest of this version", "train the codes again")
        config = from_mapping(TokenizerConfig, read_json(directory / "config.json"), str(directory / "config.json"))
        model = RQVAE(int(manifest["input_dim"]), config)
        try:
            state = load_file(str(directory / WEIGHTS))
            model.load_state_dict(state)
        except (OSError, RuntimeError, Exception) as error:  # safetensors raises its own error types
            raise InputFileError(
                directory / WEIGHTS, f"cannot load the tokenizer weights ({str(error).splitlines()[0]})", "train the codes again"
            ) from None
        tokenizer = cls(directory, config, model, IdTable.load(directory / ID_TABLE), manifest)
        if dataset is not None:
            tokenizer.check_dataset(dataset)
        return tokenizer
