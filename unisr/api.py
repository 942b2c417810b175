"""Python API: everything the CLI does, as functions (the CLI only parses options and prints)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

from unisr.data import PreparedDataset, dataset_stats, load_task, prepare
from unisr.data.stats import DatasetStats
from unisr.data.tasks import DEFAULT_TASK, resolve_data_root
from unisr.embeddings import EmbedConfig, EmbedResult, embed_dataset

DEFAULT_PREPARED_DIR = Path("prepared")
DEFAULT_QUICKSTART_DIR = Path("unisr-quickstart")


def prepare_dataset(
    task: str,
    out: str | Path | None = None,
    data_root: str | Path | None = None,
    overwrite: bool = False,
    cold_start: bool | None = None,
) -> PreparedDataset:
    """Prepare ``task`` (a name under tasks/ or a YAML path) into ``out`` (default ``prepared/<task>``)."""
    config = load_task(task)
    if cold_start is not None:
        config = dataclasses.replace(config, cold_start=cold_start)
    target = Path(out) if out is not None else DEFAULT_PREPARED_DIR / config.name
    return prepare(config, target, resolve_data_root(data_root), overwrite=overwrite)


def load_dataset(path: str | Path, verify: bool = False) -> PreparedDataset:
    return PreparedDataset.load(path, verify=verify)


def stats(path: str | Path) -> DatasetStats:
    return dataset_stats(PreparedDataset.load(path))


def embed(path: str | Path, config: EmbedConfig = EmbedConfig()) -> EmbedResult:
    return embed_dataset(path, config)


class QuickstartResult(NamedTuple):
    dataset: PreparedDataset
    stats: DatasetStats
    embeddings: EmbedResult


def quickstart(workdir: str | Path = DEFAULT_QUICKSTART_DIR, embed_config: EmbedConfig = EmbedConfig()) -> QuickstartResult:
    """Prepare the default (synthetic, no download) task, summarise it and embed it, under ``workdir``."""
    target = Path(workdir) / DEFAULT_TASK
    held = PreparedDataset.load(target).name if (target / "manifest.json").is_file() else None
    dataset = prepare_dataset(DEFAULT_TASK, target, overwrite=held == DEFAULT_TASK)
    return QuickstartResult(dataset, dataset_stats(dataset), embed_dataset(target, embed_config))
