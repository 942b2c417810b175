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
from unisr.tokenizer.ids import IdTable, table_digest
from unisr.tokenizer.model import RQVAE
from unisr.tokenizer.quantizer import random_codes
from unisr.validate import is_integer

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
        """Refuse a dataset the codes were not trained on, and an ID table naming items its catalog lacks."""
        if dataset.fingerprint != self.dataset_fingerprint:
            raise UnisrError(
                f"{self.directory}: codes were trained on dataset {self.manifest.get('dataset_name')!r} "
                f"(fingerprint {self.dataset_fingerprint}), not on {dataset.root} (fingerprint {dataset.fingerprint}); "
                "train codes for this dataset with `unisr codes train`"
            )
        self.table.check_items(dataset.catalog, Path(self.directory or ".") / ID_TABLE, dataset.name)

    def check_table(self) -> None:
        """Refuse an ID table whose trained rows are not the ones these codes wrote (edited or replaced since)."""
        rows, expected = self.manifest.get("id_table_rows"), self.manifest.get("id_table_sha256")
        if expected is None:
            return  # codes written before ID tables were pinned
        if len(self.table) < rows or table_digest(self.table, rows) != expected:
            raise InputFileError(
                Path(self.directory or ".") / ID_TABLE,
                f"its first {rows:,} rows are not the IDs these codes were trained with (sha256 {expected[:12]}); edited or replaced?",
                "restore the file or train the codes again",
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
        if not isinstance(manifest, dict) or manifest.get("kind") != CODES_KIND or manifest.get("format_version") != FORMAT_VERSION:
            raise InputFileError(manifest_path, "not a unisr codes manifest of this version", "train the codes again")
        input_dim = manifest.get("input_dim")
        if not is_integer(input_dim) or input_dim < 1 or not isinstance(manifest.get("dataset_fingerprint"), str):
            raise InputFileError(manifest_path, "input_dim or dataset_fingerprint is missing or damaged", "train the codes again")
        config = from_mapping(TokenizerConfig, read_json(directory / "config.json"), str(directory / "config.json"))
        model = RQVAE(int(input_dim), config)
        try:
            state = load_file(str(directory / WEIGHTS))
            model.load_state_dict(state)
        except (OSError, RuntimeError, Exception) as error:  # safetensors raises its own error types
            raise InputFileError(
                directory / WEIGHTS, f"cannot load the tokenizer weights ({str(error).splitlines()[0]})", "train the codes again"
            ) from None
        table = IdTable.load(directory / ID_TABLE, config.id_length, config.codebook_size)
        tokenizer = cls(directory, config, model, table, manifest)
        tokenizer.check_table()
        if dataset is not None:
            tokenizer.check_dataset(dataset)
        return tokenizer
