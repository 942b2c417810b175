"""The baselines by name: which ranker, for which tasks (one place for the CLI, the API and the comparison)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from unisr.config import load_config
from unisr.data.dataset import PreparedDataset
from unisr.embeddings import load_embeddings
from unisr.errors import UnisrError
from unisr.evaluation.evaluator import Ranker
from unisr.evaluation.rankers import BM25Ranker, DenseRanker, PopularityRanker
from unisr.evaluation.sasrec import SASRecConfig, train_sasrec

BASELINES = ("popularity", "bm25", "dense", "sasrec")
BASELINE_TASKS = {"popularity": ("rec", "search"), "bm25": ("search",), "dense": ("rec", "search"), "sasrec": ("rec",)}


class Baseline(NamedTuple):
    name: str
    ranker: Ranker
    tasks: tuple[str, ...]  # the tasks it can rank


def build_baseline(name: str, dataset: PreparedDataset, sasrec_config: str | Path | None = "sasrec") -> Baseline:
    """The ranker of baseline ``name`` on ``dataset`` (SASRec is trained here, on the training parts)."""
    if name == "popularity":
        ranker = PopularityRanker(dataset)
    elif name == "bm25":
        ranker = BM25Ranker(dataset)
    elif name == "dense":
        ranker = DenseRanker(dataset, load_embeddings(dataset.root))
    elif name == "sasrec":
        ranker = train_sasrec(dataset, load_config(SASRecConfig, sasrec_config))
    else:
        raise UnisrError(f"baseline {name!r}: choose one of {', '.join(BASELINES)}")
    return Baseline(name, ranker, BASELINE_TASKS[name])
