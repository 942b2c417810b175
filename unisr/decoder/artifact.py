"""A run directory: the trained decoder's layout, manifest, weights and its staging folder (no training code).

Layout::

    manifest.json       kind, dataset fingerprint, dataset and codes directories, tasks, sizes, timings
    config.json         the DecoderConfig
    layout.json         vocabulary sizes of each ID position, user buckets, query word pieces
    model.safetensors   weights of the best validation checkpoint (no pickle)
    train/              Lightning CSV metrics and checkpoints (last.ckpt resumes training)

Training writes into ``<out>.partial`` and renames it to ``<out>`` when it finishes, so an interrupted
run never looks finished. The manifest records the dataset and codes directories both absolutely and
relative to the run, so a run moved or copied together with them still finds them.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from unisr.config import from_mapping
from unisr.decoder.config import DecoderConfig
from unisr.decoder.model import SemanticIdTransformer, TokenLayout
from unisr.errors import InputFileError, UnisrError
from unisr.io import read_json, write_json
from unisr.tokenizer.ids import IdTable, table_digest

RUN_KIND = "unisr-run"
FORMAT_VERSION = 2  # 2: causal encoder with per-position targets and recency bias
WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"
CONFIG = "config.json"
LAYOUT = "layout.json"
MANIFEST_FIELDS = {  # what loading a run reads from its manifest, and the type each must have
    "dataset_fingerprint": str,
    "dataset_name": str,
    "dataset_dir": str,
    "codes_dir": str,
    "embedding_model": str,
    "query_dim": int,
}


def partial_dir(out: Path) -> Path:
    """The staging folder a run is trained in before it is renamed to ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def checkpoint_dir(out: Path) -> Path:
    return partial_dir(out) / "train" / "checkpoints"


def resume_checkpoint(out: Path) -> Path:
    """The checkpoint an interrupted training of ``out`` resumes from."""
    return checkpoint_dir(out) / "last.ckpt"


def layout_for(table: IdTable, codebook_size: int, user_buckets: int = 0, query_piece_vocab: int = 0) -> TokenLayout:
    """Vocabulary of each ID position: the codebook size, and for the collision token at least the largest one + 1."""
    residual_levels = table.id_length - 1
    collision = max(codebook_size, int(table.semantic_ids[:, -1].max(initial=0)) + 1)
    return TokenLayout((codebook_size,) * residual_levels + (collision,), user_buckets=user_buckets, query_piece_vocab=query_piece_vocab)


def id_tokens(table: IdTable, layout: TokenLayout) -> torch.Tensor:
    """Every item's semantic ID as global token ids ``[n_items, T]``."""
    return torch.from_numpy(table.semantic_ids) + torch.tensor(layout.level_offsets)


def linked_dirs(run_dir: Path, dataset_dir: Path, codes_dir: Path) -> dict[str, str]:
    """Manifest entries naming the dataset and codes directories, absolute and relative to the run."""
    run_dir = Path(run_dir).resolve()
    entries = {}
    for name, directory in (("dataset_dir", dataset_dir), ("codes_dir", codes_dir)):
        absolute = Path(directory).resolve()
        entries[name] = str(absolute)
        entries[f"{name}_relative"] = os.path.relpath(absolute, run_dir)
    return entries


def linked_dir(run_dir: Path, manifest: dict, name: str) -> Path:
    """The ``dataset_dir`` or ``codes_dir`` of a run: relative to the run where that exists, else the recorded absolute path."""
    relative = manifest.get(f"{name}_relative")
    if relative is not None:
        candidate = Path(run_dir) / relative
        if (candidate / "manifest.json").is_file():
            return candidate.resolve()
    return Path(manifest[name])


def check_id_table(run_dir: Path, manifest: dict, table: IdTable, codes_dir: Path) -> None:
    """Refuse codes whose ID table is not the one the run was trained on (retrained or edited since)."""
    rows, expected = manifest.get("id_table_rows"), manifest.get("id_table_sha256")
    if expected is None:
        return  # runs written before ID tables were pinned
    if len(table) < rows or table_digest(table, rows) != expected:
        found = table_digest(table, min(rows, len(table)))
        raise UnisrError(
            f"{run_dir}: trained on another ID table than {Path(codes_dir) / 'id_table.csv'} holds now "
            f"(its first {min(rows, len(table)):,} rows have sha256 {found[:12]}, the run's {rows:,} rows had {expected[:12]}; "
            "the codes were retrained or edited): pass the codes it was trained on, or train the run again"
        )


def write_run(directory: Path, model: SemanticIdTransformer, config: DecoderConfig, manifest: dict) -> None:
    """Weights, config, layout and manifest into an existing (staging) directory."""
    save_model(model, str(directory / WEIGHTS))  # handles the tied input/output embeddings
    write_json(directory / CONFIG, dataclasses.asdict(config))
    layout = model.layout
    write_json(
        directory / LAYOUT,
        {"level_sizes": list(layout.level_sizes), "user_buckets": layout.user_buckets, "query_piece_vocab": layout.query_piece_vocab},
    )
    write_json(directory / MANIFEST, {"kind": RUN_KIND, "format_version": FORMAT_VERSION, **manifest})


def read_run_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise UnisrError(f"{run_dir}: not a run directory (no manifest.json; train one with `unisr train`)")
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("kind") != RUN_KIND or manifest.get("format_version") != FORMAT_VERSION:
        raise UnisrError(f"{path}: not a unisr run manifest of this version (train again with `unisr train`)")
    missing = [key for key, kind in MANIFEST_FIELDS.items() if type(manifest.get(key)) is not kind]
    if missing:
        raise InputFileError(path, f"{missing[0]} is missing or damaged", "restore the file or train the run again")
    return manifest


def read_config(run_dir: Path) -> DecoderConfig:
    path = Path(run_dir) / CONFIG
    return from_mapping(DecoderConfig, read_json(path), str(path))


def load_model_of(run_dir: Path, config: DecoderConfig, query_dim: int) -> SemanticIdTransformer:
    """The run's model with its weights, in eval mode."""
    path = Path(run_dir) / LAYOUT
    layout_json = read_json(path)
    sizes = layout_json.get("level_sizes") if isinstance(layout_json, dict) else None
    buckets = layout_json.get("user_buckets", 0) if isinstance(layout_json, dict) else None
    pieces = layout_json.get("query_piece_vocab", 0) if isinstance(layout_json, dict) else None
    sizes_ok = isinstance(sizes, list) and sizes and all(type(size) is int and size > 0 for size in sizes)
    if not sizes_ok or type(buckets) is not int or type(pieces) is not int:
        raise InputFileError(
            path, "expected level_sizes (positive integers), user_buckets and query_piece_vocab", "restore the file or train the run again"
        )
    layout = TokenLayout(tuple(sizes), user_buckets=buckets, query_piece_vocab=pieces)
    model = SemanticIdTransformer(config, layout, query_dim)
    try:
        load_model(model, str(Path(run_dir) / WEIGHTS))
    except Exception as error:  # safetensors and torch raise several types for a bad file
        raise InputFileError(
            Path(run_dir) / WEIGHTS, f"cannot load the model weights ({str(error).splitlines()[0]})", "train the run again"
        ) from None
    return model.eval()
