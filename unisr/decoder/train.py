"""Train one decoder for recommendation and/or search on a dataset and its semantic IDs.

A run directory holds::

    manifest.json       kind, dataset fingerprint, dataset and codes directories, tasks, sizes, timings
    config.json         the DecoderConfig
    layout.json         vocabulary sizes of each ID position
    model.safetensors   weights of the best validation checkpoint (no pickle)
    train/              Lightning CSV metrics and checkpoints (last.ckpt resumes training)

Training runs in ``<out>.partial`` and is renamed to ``<out>`` when it finishes, so an interrupted
run never looks finished; ``resume=True`` continues from ``<out>.partial/train/checkpoints/last.ckpt``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from safetensors.torch import save_model

import unisr
from unisr.data.dataset import PreparedDataset
from unisr.decoder.config import DecoderConfig
from unisr.decoder.examples import Examples, index_examples, rec_examples, search_examples
from unisr.decoder.inputs import InputBuilder, item_vectors
from unisr.decoder.model import TokenLayout
from unisr.decoder.module import DecoderModule
from unisr.decoder.trie import PrefixTrie
from unisr.embeddings import ensure_embeddings
from unisr.errors import UnisrError
from unisr.io import read_json, write_json
from unisr.tokenizer import IdTable, SemanticTokenizer
from unisr.training import quiet_lightning

RUN_KIND = "unisr-run"
FORMAT_VERSION = 2  # 2: causal encoder with per-position targets and recency bias
WEIGHTS = "model.safetensors"


class RunResult(NamedTuple):
    directory: Path
    best_validation: dict[str, float]
    targets_per_second: float | None
    wall_seconds: float


def layout_for(table: IdTable, codebook_size: int, user_buckets: int = 0) -> TokenLayout:
    """Vocabulary of each ID position: the codebook size, and for the collision token at least the largest one + 1."""
    residual_levels = table.id_length - 1
    collision = max(codebook_size, int(table.semantic_ids[:, -1].max(initial=0)) + 1)
    return TokenLayout((codebook_size,) * residual_levels + (collision,), user_buckets=user_buckets)


def id_tokens(table: IdTable, layout: TokenLayout) -> torch.Tensor:
    return torch.from_numpy(table.semantic_ids) + torch.tensor(layout.level_offsets)


def _subsample(examples: Examples, count: int, seed: int) -> Examples:
    if len(examples) <= count:
        return examples
    rows = np.sort(np.random.default_rng(seed).choice(len(examples), size=count, replace=False))
    return examples.subset(rows)


def build_examples(
    dataset: PreparedDataset, table: IdTable, query_row: dict[str, int], config: DecoderConfig, split: str
) -> dict[str, Examples]:
    item_row = {item: row for row, item in enumerate(table.item_ids)}
    examples = {}
    if "rec" in config.tasks:
        examples["rec"] = rec_examples(dataset, item_row, split, config.max_history, config.user_buckets, config.every_position)
    if "search" in config.tasks:
        queries = dataset.queries_in(split)
        examples["search"] = search_examples(
            dataset, queries, item_row, query_row, config.max_history, config.search_history, config.user_buckets
        )
    if "search" in config.tasks and config.index_share > 0 and split == "train":
        examples["index"] = index_examples(len(table.item_ids), len(query_row), config.max_history)  # item texts follow the queries
    return {task: part for task, part in examples.items() if len(part)}


def train_decoder(
    dataset_dir: str | Path,
    codes_dir: str | Path,
    config: DecoderConfig = DecoderConfig(),
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> RunResult | None:
    """Train the decoder on the tasks of ``config``; returns None on non-zero DDP ranks."""
    started = time.perf_counter()
    dataset_dir, codes_dir = Path(dataset_dir), Path(codes_dir)
    dataset = PreparedDataset.load(dataset_dir)
    tokenizer = SemanticTokenizer.load(codes_dir, dataset)
    out = Path(out) if out is not None else codes_dir.parent / f"{codes_dir.name}-run-{'-'.join(config.tasks)}"
    if out.exists() and not overwrite:
        raise UnisrError(f"{out}: already exists (choose another --out or pass --overwrite)")
    partial = out.with_name(out.name + ".partial")
    checkpoint = partial / "train" / "checkpoints" / "last.ckpt"
    if resume and not checkpoint.is_file():
        raise UnisrError(f"{checkpoint}: nothing to resume (train without --resume)")
    if not resume and partial.exists():
        shutil.rmtree(partial)
    if config.threads:
        torch.set_num_threads(config.threads)
    embeddings = ensure_embeddings(dataset_dir, tokenizer.manifest["embedding_model"], config.progress)
    query_row = {text: row for row, text in enumerate(embeddings.query_texts)}
    table = tokenizer.table
    layout = layout_for(table, tokenizer.config.codebook_size, config.user_buckets)
    train = build_examples(dataset, table, query_row, config, "train")
    missing = [task for task in config.tasks if task not in train]
    if missing:
        available = ",".join(task for task in config.tasks if task in train) or "rec"
        raise UnisrError(f"{dataset_dir} has no training examples for task {missing[0]!r} (train with --tasks {available})")
    valid = {
        task: _subsample(part, config.val_max_requests, config.seed)
        for task, part in build_examples(dataset, table, query_row, config, "valid").items()
    }

    quiet_lightning()
    L.seed_everything(config.seed, workers=True, verbose=False)
    content = item_vectors(embeddings.items, dataset, table.item_ids) if config.history_content else None
    query_vectors = torch.from_numpy(np.ascontiguousarray(embeddings.queries)).float()
    if "index" in train:  # indexing rows read the items' own text vectors, stored after the query texts
        query_vectors = torch.cat([query_vectors, item_vectors(embeddings.items, dataset, table.item_ids)])
    inputs = InputBuilder(layout, id_tokens(table, layout), query_vectors, content)
    trie = PrefixTrie.from_ids(torch.from_numpy(table.semantic_ids), layout.level_sizes)
    module = DecoderModule(config, layout, inputs, embeddings.queries.shape[1], trie, Examples.concat(list(train.values())), valid)
    monitor = f"val/recall@{config.top_k}"
    best = ModelCheckpoint(
        dirpath=str(partial / "train" / "checkpoints"), monitor=monitor, mode="max", save_last=True, save_top_k=1, filename="best"
    )
    callbacks = [best]
    if valid:
        callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=config.patience))
    trainer = L.Trainer(
        max_epochs=config.epochs,
        max_time={"minutes": config.max_minutes} if config.max_minutes > 0 else None,
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        logger=CSVLogger(str(partial / "train"), name="", version=""),
        callbacks=callbacks,
        enable_progress_bar=config.progress,
        enable_model_summary=False,
        reload_dataloaders_every_n_epochs=1,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        limit_val_batches=1.0 if valid else 0,
    )
    trainer.fit(module, ckpt_path=str(checkpoint) if resume else None)
    if trainer.interrupted:
        raise UnisrError(f"training interrupted; {partial} keeps its checkpoints (run the same command with --resume)")
    if trainer.global_rank != 0:
        return None
    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    metrics = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")}
    best_validation = {monitor: float(best.best_model_score)} if best.best_model_score is not None else metrics
    speed = trainer.callback_metrics.get("train/targets_per_second")
    wall = time.perf_counter() - started
    save_model(module.model, str(partial / WEIGHTS))  # handles the tied input/output embeddings
    write_json(partial / "config.json", dataclasses.asdict(config))
    write_json(partial / "layout.json", {"level_sizes": list(layout.level_sizes), "user_buckets": layout.user_buckets})
    write_json(
        partial / "manifest.json",
        {
            "kind": RUN_KIND,
            "format_version": FORMAT_VERSION,
            "unisr_version": unisr.__version__,
            "dataset_fingerprint": dataset.fingerprint,
            "dataset_name": dataset.name,
            "dataset_dir": str(dataset_dir.resolve()),
            "codes_dir": str(codes_dir.resolve()),
            "embedding_model": tokenizer.manifest["embedding_model"],
            "query_dim": int(embeddings.queries.shape[1]),
            "tasks": list(config.tasks),
            "training_rows": {task: len(part) for task, part in train.items()},
            "training_targets": {task: part.targets for task, part in train.items()},
            "best_validation": best_validation,
            "targets_per_second": float(speed) if speed is not None else None,
            "epochs_run": trainer.current_epoch,
            "wall_seconds": round(wall, 1),
            "torch_threads": torch.get_num_threads(),
        },
    )
    if out.exists():
        shutil.rmtree(out)
    os.replace(partial, out)
    return RunResult(out, best_validation, float(speed) if speed is not None else None, wall)


def read_run_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise UnisrError(f"{run_dir}: not a run directory (no manifest.json; train one with `unisr train`)")
    manifest = read_json(path)
    if manifest.get("kind") != RUN_KIND or manifest.get("format_version") != FORMAT_VERSION:
        raise UnisrError(f"{path}: not a unisr run manifest of this version (train again with `unisr train`)")
    return manifest
