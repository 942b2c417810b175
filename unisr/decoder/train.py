"""Train one decoder for recommendation and/or search on a dataset and its semantic IDs (run layout: ``decoder.artifact``)."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
from pathlib import Path
from typing import NamedTuple

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from unisr.data.dataset import PreparedDataset
from unisr.decoder.artifact import (
    checkpoint_dir,
    id_tokens,
    layout_for,
    linked_dirs,
    partial_dir,
    resume_checkpoint,
    write_run,
)
from unisr.decoder.calibration import sweep_guidance
from unisr.decoder.config import ITEM_SHARE, DecoderConfig
from unisr.decoder.examples import Examples, index_examples, rec_examples, search_examples
from unisr.decoder.guidance import CodePrior, Guidance
from unisr.decoder.inputs import AnchorLatents, InputBuilder, item_vectors
from unisr.decoder.module import DecoderModule
from unisr.decoder.resume import TRAINING_SETTINGS, check_checkpoint, keep_metrics_history, read_metrics, resumable_config
from unisr.decoder.trie import PrefixTrie
from unisr.embeddings import WordPieces, ensure_embeddings, resolve_model
from unisr.errors import UnisrError
from unisr.io import give_usual_permissions, launched_worker, output_lock, refuse_existing, replace_directory, write_json
from unisr.tokenizer import IdTable, SemanticTokenizer
from unisr.tokenizer.ids import table_record
from unisr.training import make_trainer, quiet_lightning


class RunResult(NamedTuple):
    directory: Path
    best_validation: dict[str, float]
    targets_per_second: float | None
    wall_seconds: float


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


def reduced_piece_table(table: np.ndarray, width: int) -> torch.Tensor:
    """The sentence encoder's word-piece embeddings ``[V, D]`` reduced to ``width`` columns by PCA (deterministic SVD),
    scaled to unit variance per entry like a fresh embedding table; the padding row 0 stays 0."""
    vectors = torch.from_numpy(table[1:]).double()
    centered = vectors - vectors.mean(0)
    _, _, directions = torch.linalg.svd(centered, full_matrices=False)
    directions = directions[:width]
    largest = directions.gather(1, directions.abs().argmax(1, keepdim=True))
    directions = directions * largest.sign()  # SVD's sign is arbitrary: each direction's largest entry is made positive
    reduced = centered @ directions.T
    if reduced.shape[1] < width:  # an encoder narrower than the model: the remaining columns stay 0
        reduced = torch.cat([reduced, reduced.new_zeros(len(reduced), width - reduced.shape[1])], 1)
    reduced = reduced / reduced.std().clamp_min(1e-12)
    return torch.cat([reduced.new_zeros(1, width), reduced]).float()


def train_decoder(
    dataset_dir: str | Path,
    codes_dir: str | Path,
    config: DecoderConfig = DecoderConfig(),
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> RunResult | None:
    """Train the decoder on the tasks of ``config``; returns None on non-zero DDP ranks.

    The output is locked while it trains (a second training of the same ``out`` is refused); an
    interrupted training's ``<out>.partial`` is kept for ``resume`` and removed only with ``overwrite``.
    """
    codes_dir = Path(codes_dir)
    out = Path(out) if out is not None else codes_dir.parent / f"{codes_dir.name}-run-{'-'.join(config.tasks)}"
    threads = torch.get_num_threads()
    try:
        with output_lock(out) if not launched_worker() else contextlib.nullcontext():
            return _train(Path(dataset_dir), codes_dir, config, out, overwrite, resume)
    finally:  # ``config.threads`` holds for this training only: the caller's later work keeps its thread count
        torch.set_num_threads(threads)


def _train(dataset_dir: Path, codes_dir: Path, config: DecoderConfig, out: Path, overwrite: bool, resume: bool) -> RunResult | None:
    started = time.perf_counter()
    dataset = PreparedDataset.load(dataset_dir)
    tokenizer = SemanticTokenizer.load(codes_dir, dataset)
    refuse_existing(out, overwrite)
    partial, checkpoint = partial_dir(out), resume_checkpoint(out)
    if resume and not checkpoint.is_file():
        raise UnisrError(f"{checkpoint}: nothing to resume (train without --resume)")
    primary = not launched_worker()  # processes that Lightning's DDP launcher started re-run this; the first one owns ``partial``
    if primary and not resume and partial.exists():
        if not overwrite:
            how = "--resume to continue it or " if checkpoint.is_file() else ""
            raise UnisrError(f"{partial}: an earlier training of {out} did not finish; pass {how}--overwrite to start again")
        shutil.rmtree(partial)
    if resume:
        config = resumable_config(partial, config)
    if config.threads:
        torch.set_num_threads(config.threads)
    embeddings = ensure_embeddings(dataset_dir, tokenizer.manifest["embedding_model"], config.progress)
    query_row = {text: row for row, text in enumerate(embeddings.query_texts)}
    table = tokenizer.table
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
    items = item_vectors(embeddings.items, dataset, table.item_ids)
    content = items if config.history_content else None
    query_vectors = torch.from_numpy(np.ascontiguousarray(embeddings.queries)).float()
    if "index" in train:  # indexing rows read the items' own text vectors, stored after the query texts
        query_vectors = torch.cat([query_vectors, items])
    if tokenizer.codebooks is None:  # random IDs carry no content: nothing to guide with
        config = dataclasses.replace(config, guidance_training=0.0, guidance_grid=())
    query_pieces, piece_vocab, piece_table = None, 0, None
    if config.query_pieces:  # the words of the query texts (and, for indexing rows, of the items' texts, in the same order)
        words = WordPieces(resolve_model(tokenizer.manifest["embedding_model"]))
        texts = list(embeddings.query_texts)
        if "index" in train:
            texts += [dataset.catalog.texts[dataset.catalog.position(item)] for item in table.item_ids]
        query_pieces, piece_vocab = torch.from_numpy(words.encode(texts, config.query_pieces)), words.vocab_size
        if config.query_piece_init == "encoder":
            piece_table = reduced_piece_table(words.input_embeddings(), config.d_model)
    layout = layout_for(table, tokenizer.config.codebook_size, config.user_buckets, piece_vocab)
    prior, anchor_latents = None, None
    if config.guidance_training > 0 or config.guidance_grid:
        anchor_latents = AnchorLatents(tokenizer.latents(items), tokenizer.latents(query_vectors))
        prior = CodePrior.fit(tokenizer.codebooks, anchor_latents.items, layout.level_sizes)
    trained_prior = config.guidance_training > 0
    anchors = anchor_latents if trained_prior else None
    inputs = InputBuilder(layout, id_tokens(table, layout), query_vectors, content, anchors, query_pieces)
    trie = PrefixTrie.from_ids(torch.from_numpy(table.semantic_ids), layout.level_sizes)
    examples = Examples.concat(list(train.values()))
    module = DecoderModule(config, layout, inputs, embeddings.queries.shape[1], trie, examples, valid, prior if trained_prior else None)
    if piece_table is not None:
        with torch.no_grad():
            module.model.piece_embedding.weight.copy_(piece_table)
    monitor = f"val/recall@{config.top_k}"
    best = ModelCheckpoint(dirpath=str(checkpoint_dir(out)), monitor=monitor, mode="max", save_last=True, save_top_k=1, filename="best")
    callbacks = [best]
    if valid:
        callbacks.append(EarlyStopping(monitor=monitor, mode="max", patience=config.patience))
    trainer = make_trainer(
        config.epochs,
        callbacks,
        config.progress,
        partial / "train",
        config.max_minutes,
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=config.strategy,
        num_nodes=config.num_nodes,
        precision=config.precision,
        reload_dataloaders_every_n_epochs=1,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        limit_val_batches=1.0 if valid else 0,
    )
    history = None
    if resume:
        check_checkpoint(checkpoint, module)
        history = read_metrics(partial / "train")
    elif primary:
        partial.mkdir(parents=True, exist_ok=True)
        write_json(partial / TRAINING_SETTINGS, dataclasses.asdict(config))
    trainer.fit(module, ckpt_path=str(checkpoint) if resume else None, weights_only=True)
    if history is not None and trainer.global_rank == 0:
        keep_metrics_history(partial / "train", history)
    if trainer.interrupted:
        raise UnisrError(f"training interrupted; {partial} keeps its checkpoints (run the same command with --resume)")
    if trainer.global_rank != 0:
        return None
    if best.best_model_path:
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    model = module.model.cpu().eval()
    sweep = None
    if config.guidance_grid and valid:
        grid, beam = config.guidance_grid, (config.beam_size, config.top_k, config.batch_size)
        current = Guidance(config.guidance_rec, config.guidance_search)
        content_anchors = AnchorLatents(items, query_vectors) if any(ITEM_SHARE[kind] for kind in config.guidance_priors) else None
        sweep = sweep_guidance(
            model, inputs, trie.to("cpu"), valid, prior, anchor_latents, grid, *beam, current, config.guidance_training, content_anchors,
            config.guidance_priors,
        )  # fmt: skip
        chosen_priors = {f"guidance_prior_{task}": kind for task, kind in sweep.priors.items()}
        config = dataclasses.replace(config, guidance_rec=sweep.chosen.rec, guidance_search=sweep.chosen.search, **chosen_priors)
    metrics = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")}
    best_validation = {monitor: float(best.best_model_score)} if best.best_model_score is not None else metrics
    speed = trainer.callback_metrics.get("train/targets_per_second")
    wall = time.perf_counter() - started
    manifest = {
        **dataset.artifact_header(),
        **linked_dirs(out, dataset_dir, codes_dir),
        "embedding_model": tokenizer.manifest["embedding_model"],
        **table_record(table),
        "query_dim": int(embeddings.queries.shape[1]),
        "tasks": list(config.tasks),
        "training_rows": {task: len(part) for task, part in train.items()},
        "training_targets": {task: part.targets for task, part in train.items()},
        "best_validation": best_validation,
        "guidance": {
            "rec": config.guidance_rec,
            "search": config.guidance_search,
            "training": config.guidance_training,
            "prior_rec": config.guidance_prior_rec,
            "prior_search": config.guidance_prior_search,
        },
        "guidance_validation": {
            task: {kind: {f"{w:g}": r for w, r in scores.items()} for kind, scores in by_prior.items()}
            for task, by_prior in sweep.recall.items()
        }
        if sweep
        else None,
        "targets_per_second": float(speed) if speed is not None else None,
        "epochs_run": trainer.current_epoch,
        "wall_seconds": round(wall, 1),
        "torch_threads": torch.get_num_threads(),
    }
    write_run(partial, model, config, manifest)
    give_usual_permissions(partial)
    replace_directory(partial, out)
    return RunResult(out, best_validation, float(speed) if speed is not None else None, wall)
