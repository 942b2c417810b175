"""Prepare a task: load its source, drop short users, split, hold out cold-start items, build queries, write."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import unisr
from unisr.data.dataset import FILES, FORMAT_VERSION, MANIFEST, PreparedDataset
from unisr.data.loaders import load_source
from unisr.data.queries import category_path_queries, item_specific_queries, log_queries, read_query_log, without_cold_items
from unisr.data.schema import Catalog, Item, Query, RawData, RecSplit, UserSequence
from unisr.data.tasks import TaskConfig, resolve_source_files
from unisr.data.text import render_item_text
from unisr.errors import UnisrError
from unisr.io import atomic_directory, read_json, sha256_file, write_json, write_jsonl


def keep_long_sequences(sequences: Sequence[UserSequence], min_length: int) -> tuple[list[UserSequence], int]:
    """Users with at least ``min_length`` items, and how many were dropped."""
    kept = [sequence for sequence in sequences if len(sequence.items) >= min_length]
    return kept, len(sequences) - len(kept)


def leave_one_out(sequence: Sequence[str], user_id: str) -> RecSplit:
    return RecSplit(user_id, tuple(sequence[:-2]), sequence[-2], sequence[-1])


def draw_cold_start_items(test_items: Sequence[str], share: float, seed: int) -> frozenset[str]:
    """A seeded ``share`` of the distinct test items (at least one)."""
    distinct = sorted(set(test_items))
    count = max(1, round(share * len(distinct)))
    picked = np.random.default_rng(seed).choice(len(distinct), size=count, replace=False)
    return frozenset(distinct[i] for i in sorted(picked.tolist()))


def split_sequences(sequences: Sequence[UserSequence], cold_items: frozenset[str], min_length: int) -> tuple[list[RecSplit], int]:
    """Leave-one-out splits with cold-start items removed everywhere but the test target.

    Returns the splits and the number of users who fell below ``min_length`` after the removal.
    """
    splits, dropped = [], 0
    for sequence in sequences:
        items = [item for item in sequence.items[:-1] if item not in cold_items] + [sequence.items[-1]]
        if len(items) < min_length:
            dropped += 1
            continue
        splits.append(leave_one_out(items, sequence.user_id))
    return splits, dropped


def render_catalog(items: Sequence[Item], used: set[str], task: TaskConfig) -> tuple[Catalog, int]:
    """Catalog of the items used by kept users, with rendered text; counts items without text."""
    rendered, without_text = [], 0
    for item in items:
        if item.item_id not in used:
            continue
        text = render_item_text(item, task.text_fields)
        if not text.strip():
            if not task.allow_items_without_text:
                raise UnisrError(
                    f"item {item.item_id!r} has no text in fields {task.text_fields} "
                    f"(fix the item file, or set allow_items_without_text: true in task {task.name!r})"
                )
            without_text += 1
        rendered.append(dataclasses.replace(item, text=text))
    return Catalog(rendered), without_text


def build_queries(task: TaskConfig, raw: RawData, catalog: Catalog, splits: Sequence[RecSplit]) -> tuple[list[Query], dict]:
    """Queries of the task's protocol, over the split sequences (``train + [valid, test]``)."""
    config = task.queries
    split_sequences_ = [UserSequence(split.user_id, (*split.train, split.valid, split.test)) for split in splits]
    if config.protocol == "category_path":
        return category_path_queries(catalog, split_sequences_, config.seed), {}
    if config.protocol == "item_specific":
        return item_specific_queries(catalog, dataclasses.replace(config.item_specific, seed=config.seed)), {}
    if config.protocol == "log":
        events = raw.query_log
        if config.log is not None:
            events = read_query_log(Path(config.log))
        if events is None:
            raise UnisrError(f"task {task.name!r} uses query protocol 'log' but names no log (set queries.log to a JSONL file)")
        return log_queries(events, catalog, split_sequences_, config.seed)
    return [], {}


def _fingerprint(hashes: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(hashes):
        digest.update(f"{name}:{hashes[name]}\n".encode())
    return digest.hexdigest()[:16]


def check_output_directory(out: Path, task: TaskConfig, overwrite: bool) -> None:
    """Refuse to replace a directory that holds something else, unless ``overwrite``."""
    if not out.exists() or overwrite:
        return
    if (out / MANIFEST).is_file():
        held = read_json(out / MANIFEST).get("task", {}).get("name", "?")
        raise UnisrError(f"{out}: already holds a prepared dataset (task {held!r}); choose another --out or pass --overwrite")
    if out.is_dir() and not any(out.iterdir()):
        return
    raise UnisrError(f"{out}: exists and is not an empty directory; choose another --out or pass --overwrite")


def prepare(task: TaskConfig, out: Path, data_root: Path | None = None, overwrite: bool = False) -> PreparedDataset:
    """Run the whole preparation and write the dataset directory atomically."""
    out = Path(out)
    check_output_directory(out, task, overwrite)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    raw = load_source(task.loader, **resolve_source_files(task, data_root), **task.options)
    sequences, dropped_short = keep_long_sequences(raw.sequences, task.min_sequence_length)
    if not sequences:
        raise UnisrError(f"task {task.name!r}: no user has {task.min_sequence_length} or more items; nothing to split")
    cold_items = frozenset()
    if task.cold_start:
        cold_items = draw_cold_start_items([sequence.items[-1] for sequence in sequences], task.cold_start_share, task.seed)
    splits, dropped_cold = split_sequences(sequences, cold_items, task.min_sequence_length)
    used = {item for sequence in sequences for item in sequence.items}
    catalog, without_text = render_catalog(raw.items, used, task)
    queries, query_log_counts = build_queries(task, raw, catalog, splits)
    queries = without_cold_items(queries, set(cold_items))
    dataset = PreparedDataset(None, {}, catalog, sequences, splits, queries, cold_items)

    with atomic_directory(out, overwrite=overwrite) as staging:
        write_jsonl(staging / FILES["items"], (item.to_record() for item in catalog))
        write_jsonl(staging / FILES["sequences"], (sequence.to_record() for sequence in sequences))
        write_jsonl(staging / FILES["splits"], (split.to_record() for split in splits))
        write_jsonl(staging / FILES["queries"], (query.to_record() for query in queries))
        write_json(staging / FILES["cold_start"], {"items": sorted(cold_items)})
        hashes = {name: sha256_file(staging / name) for name in FILES.values()}
        manifest = {
            "format_version": FORMAT_VERSION,
            "unisr_version": unisr.__version__,
            "fingerprint": _fingerprint(hashes),
            "task": dataclasses.asdict(task),
            "source": raw.source,
            "counts": dataset.counts(),
            "published_counts": task.published,
            "dropped_users": {"too_short": dropped_short, "too_short_after_cold_start": dropped_cold},
            "items_without_text": without_text,
            "split": {"protocol": "leave-one-out", "users": len(splits)},
            "queries": {
                "protocol": task.queries.protocol,
                "per_split": dataset.query_counts(),
                **({"log": query_log_counts} if query_log_counts else {}),
            },
            "cold_start": {
                "enabled": task.cold_start,
                "share": task.cold_start_share if task.cold_start else 0.0,
                "seed": task.seed,
                "items": len(cold_items),
            },
            "files": hashes,
        }
        write_json(staging / MANIFEST, manifest)
    return PreparedDataset.load(out)
