"""Train semantic IDs for a prepared dataset, and give IDs to new items with a frozen tokenizer."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from unisr.data.dataset import PreparedDataset
from unisr.embeddings import DEFAULT_MODEL, ensure_embeddings
from unisr.errors import UnisrError
from unisr.io import atomic_directory, clear_stale_staging, launched_worker, output_lock, refuse_existing
from unisr.tokenizer.artifact import CODES_KIND, FORMAT_VERSION, SemanticTokenizer
from unisr.tokenizer.config import TokenizerConfig
from unisr.tokenizer.health import HealthReport, check_collapse, health_report
from unisr.tokenizer.ids import IdTable, table_record
from unisr.tokenizer.module import TokenizerModule
from unisr.tokenizer.quantizer import random_codes
from unisr.tokenizer.signals import build_signals
from unisr.training import make_trainer, quiet_lightning

SCRATCH_SUFFIX = ".work"  # the training's own scratch folder beside the output (Lightning logs and checkpoints)


class CodesResult(NamedTuple):
    directory: Path
    tokenizer: SemanticTokenizer
    health: HealthReport
    wall_seconds: float


def _trainer(config: TokenizerConfig, log_dir: Path) -> L.Trainer:
    return make_trainer(
        config.epochs,
        [ModelCheckpoint(dirpath=str(log_dir / "checkpoints"), save_last=True, save_top_k=0)],
        config.progress,
        log_dir,
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        deterministic=True,
        log_every_n_steps=1,
    )


def train_codes(
    dataset_dir: str | Path,
    config: TokenizerConfig = TokenizerConfig(),
    out: str | Path | None = None,
    embedding_model: str = DEFAULT_MODEL,
    overwrite: bool = False,
) -> CodesResult | None:
    """Train the tokenizer of ``config.scheme`` / ``config.quantizer`` and write a codes directory.

    Cold-start items of the dataset are not coded here (give them IDs with ``assign_codes``).
    Under multi-process DDP only rank 0 writes and returns a result; other ranks return None.
    """
    started = time.perf_counter()
    dataset_dir = Path(dataset_dir)
    dataset = PreparedDataset.load(dataset_dir)
    out = Path(out) if out is not None else dataset_dir.parent / f"{dataset.name}-codes-{config.scheme}-{config.quantizer}"
    with output_lock(out) if not launched_worker() else contextlib.nullcontext():
        return _train_codes(dataset_dir, dataset, config, out, embedding_model, overwrite, started)


def _train_codes(
    dataset_dir: Path, dataset: PreparedDataset, config: TokenizerConfig, out: Path, embedding_model: str, overwrite: bool, started: float
) -> CodesResult | None:
    refuse_existing(out, overwrite)
    embeddings = ensure_embeddings(dataset_dir, embedding_model, config.progress)
    coded = [row for row, item in enumerate(dataset.catalog) if item.item_id not in dataset.cold_start_items]
    item_ids = [dataset.catalog.items[row].item_id for row in coded]
    item_row = {item: row for row, item in enumerate(item_ids)}
    query_row = {text: row for row, text in enumerate(embeddings.query_texts)}
    signals = build_signals(dataset, item_row, query_row, config.window, config.pair_weighting)
    kind = config.quantizer_kind
    random_ids = not kind.trains_encoder  # baseline: nothing is trained, codes come from a seeded hash
    if config.uses_search and len(signals.search) == 0 and not random_ids:
        raise UnisrError(f"scheme {config.scheme!r} needs training queries, but {dataset_dir} has none (pick scheme rec or content)")
    if config.uses_rec and len(signals.co_engagement) == 0 and not random_ids:
        raise UnisrError(
            f"scheme {config.scheme!r} needs co-engaged item pairs, but {dataset_dir} has none (pick scheme search or content)"
        )

    items = torch.from_numpy(np.ascontiguousarray(embeddings.items[coded])).float()
    queries = torch.from_numpy(np.ascontiguousarray(embeddings.queries)).float()
    quiet_lightning()
    if config.strategy.startswith("ddp_spawn"):
        # spawned workers receive the item tensors through shared memory; file descriptors fail in some sandboxes
        torch.multiprocessing.set_sharing_strategy("file_system")
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = TokenizerModule(config, items, queries, signals.search, signals.co_engagement, quantize=kind.quantizes_in_training)
    loader = DataLoader(
        torch.arange(len(items)), batch_size=config.batch_size, shuffle=True, generator=torch.Generator().manual_seed(config.seed)
    )

    if not launched_worker():
        clear_stale_staging(out, (".tmp", ".old", SCRATCH_SUFFIX))  # what a killed training of ``out`` left
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=SCRATCH_SUFFIX, dir=out.parent))  # the next run clears it
    try:
        if not random_ids:
            trainer = _trainer(config, scratch / "train")
            trainer.fit(module, loader)
            if trainer.interrupted:
                raise UnisrError("tokenizer training interrupted; nothing was written (run the command again)")
            if trainer.global_rank != 0:
                return None
        model = module.model.cpu().eval()
        if random_ids:
            codes = random_codes(embeddings.items[coded], config.levels, config.codebook_size, config.seed)
            query_first = random_codes(embeddings.queries, config.levels, config.codebook_size, config.seed)[:, 0]
            mse = float("nan")  # random IDs reconstruct nothing
        else:
            with torch.no_grad():
                latent = model.encode(items)
                if kind.fits_codebooks_after:
                    rows = torch.randperm(len(items), generator=torch.Generator().manual_seed(config.seed))[: config.kmeans_init_points]
                    model.quantizer.initialise_with_kmeans(latent[rows], config.seed)
                quantized = model.quantizer.decode_codes(model.quantizer.encode(latent))
                mse = F.mse_loss(model.decoder(quantized), model.standardise(items)).item()
                codes = model.codes(items).numpy()
                query_first = model.codes(queries).numpy()[:, 0] if len(queries) else np.zeros(0, np.int64)
        report = health_report(codes, mse, signals.valid_transitions, signals.valid_queries, query_first, config.seed)
        check_collapse(report.levels, config.codebook_size, len(codes), config.min_code_usage)
        table = IdTable.from_codes(item_ids, codes)
        wall = time.perf_counter() - started
        manifest = {
            "kind": CODES_KIND,
            "format_version": FORMAT_VERSION,
            **dataset.artifact_header(),
            "dataset_dir": str(dataset_dir.resolve()),
            "embedding_model": embeddings.meta["model"],
            "embedding_weights_sha256": embeddings.meta.get("weights_sha256"),
            "input_dim": int(items.shape[1]),
            "items_coded": len(item_ids),
            "cold_start_items_left_out": len(dataset.cold_start_items),
            "id_length": config.id_length,
            **table_record(table),
            "signal_pairs": {"search": len(signals.search), "co_engagement": len(signals.co_engagement)},
            "wall_seconds": round(wall, 1),
        }
        tokenizer = SemanticTokenizer(None, config, model, table, manifest)
        with atomic_directory(out, overwrite=overwrite) as staging:
            tokenizer.save(staging, report.to_dict())
            if (scratch / "train").is_dir():
                shutil.copytree(scratch / "train", staging / "train")
        tokenizer.directory = out
        return CodesResult(out, tokenizer, report, wall)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


ASSIGN_CHUNK = 8192  # items coded per chunk by assign_codes


class AssignResult(NamedTuple):
    assigned: list[str]
    table: IdTable


def code_rows(tokenizer: SemanticTokenizer, vectors: np.ndarray, rows: np.ndarray, chunk_size: int, progress: bool = False) -> np.ndarray:
    """Residual codes ``[len(rows), levels]`` of ``vectors[rows]``, read and coded ``chunk_size`` rows at a time
    (``vectors`` may be a memory map: only one chunk of it is ever in memory)."""
    from tqdm.auto import tqdm

    parts = [np.zeros((0, tokenizer.config.levels), dtype=np.int64)]
    with tqdm(total=len(rows), desc="coding items", unit="item", disable=not progress) as bar:
        for start in range(0, len(rows), chunk_size):
            chunk = rows[start : start + chunk_size]
            parts.append(np.asarray(tokenizer.codes(vectors[chunk]), dtype=np.int64))
            bar.update(len(chunk))
    return np.concatenate(parts)


def assign_codes(
    codes_dir: str | Path,
    dataset_dir: str | Path,
    item_ids: list[str] | None = None,
    embedding_model: str | None = None,
    chunk_size: int = ASSIGN_CHUNK,
    progress: bool = False,
) -> AssignResult:
    """Give semantic IDs to catalog items without one (default: all of them) with the frozen tokenizer.

    Existing IDs never change; the new rows are appended to the ID table (origin ``assigned``). The item
    embeddings are memory-mapped and coded ``chunk_size`` items at a time.
    """
    dataset = PreparedDataset.load(dataset_dir)
    tokenizer = SemanticTokenizer.load(codes_dir, dataset)
    missing = [item for item in (item_ids if item_ids is not None else dataset.catalog.ids) if item not in tokenizer.table]
    unknown = [item for item in missing if item not in dataset.catalog]
    if unknown:
        raise UnisrError(f"item {unknown[0]!r} is not in the catalog of {dataset_dir}")
    if not missing:
        return AssignResult([], tokenizer.table)
    embeddings = ensure_embeddings(Path(dataset_dir), embedding_model or tokenizer.manifest["embedding_model"], progress, mmap=True)
    rows = np.array([dataset.catalog.position(item) for item in missing], dtype=np.int64)
    table = tokenizer.table.extended(missing, code_rows(tokenizer, embeddings.items, rows, chunk_size, progress))
    with output_lock(Path(codes_dir)):
        table.save(Path(codes_dir) / "id_table.csv")
    return AssignResult(missing, table)


__all__ = ["AssignResult", "CodesResult", "assign_codes", "train_codes"]
