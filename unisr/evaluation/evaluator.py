"""Evaluate any ranker on either task with full-ranking metrics and breakdowns (popularity, cold start)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np

from unisr.data.dataset import PreparedDataset
from unisr.data.schema import Query
from unisr.evaluation.metrics import DEFAULT_KS, pad_rows, per_request_metrics
from unisr.evaluation.requests import EvalRequest, TaskRequests, task_requests

POPULARITY_GROUPS = ("head", "torso", "tail")  # items making up the first, second and last third of training engagements


class Ranker(Protocol):
    """Anything that ranks catalog rows (``dataset.catalog`` order) for a batch of requests of one task."""

    def rank(self, task: str, requests: Sequence[EvalRequest], k: int) -> np.ndarray:  # [R, k] rows, -1 = none
        ...


class TaskResult(NamedTuple):
    task: str
    split: str
    requests: int
    metrics: dict[str, float]  # mean over requests
    breakdown: dict[str, dict]  # group → {"requests": n, **metrics}


def engagement_counts(dataset: PreparedDataset) -> np.ndarray:
    """Training engagements of every catalog row (the users' training parts only)."""
    positions = [dataset.catalog.position(item) for split in dataset.splits for item in split.train]
    return np.bincount(np.asarray(positions, dtype=np.int64), minlength=len(dataset.catalog))


def popularity_groups(dataset: PreparedDataset) -> np.ndarray:
    """Group index (0 head, 1 torso, 2 tail) of every catalog row by its training engagements."""
    counts = engagement_counts(dataset)
    order = np.argsort(-counts, kind="stable")
    share = np.cumsum(counts[order]) / max(1, counts.sum())
    group_sorted = np.minimum((share * len(POPULARITY_GROUPS) - 1e-9).astype(np.int64).clip(min=0), len(POPULARITY_GROUPS) - 1)
    group_sorted[counts[order] == 0] = len(POPULARITY_GROUPS) - 1
    groups = np.empty(len(counts), dtype=np.int64)
    groups[order] = group_sorted
    return groups


def _mean(values: dict[str, np.ndarray], mask: np.ndarray | None = None) -> dict[str, float]:
    """Mean of every per-request metric over ``mask`` (all requests by default; 0 for an empty group)."""
    result = {}
    for name, array in values.items():
        selected = array if mask is None else array[mask]
        result[name] = float(selected.mean()) if len(selected) else 0.0
    return result


def evaluate(
    ranker: Ranker, dataset: PreparedDataset, requests: TaskRequests, ks: Sequence[int] = DEFAULT_KS, batch_size: int = 256
) -> TaskResult:
    """Metrics of ``ranker`` on ``requests`` (all of them, full ranking), with popularity and cold-start breakdowns."""
    k = max(ks)
    batches = [requests.requests[start : start + batch_size] for start in range(0, len(requests.requests), batch_size)]
    ranked = np.concatenate([ranker.rank(requests.task, batch, k) for batch in batches]) if batches else np.zeros((0, k), np.int64)
    relevant = pad_rows([[dataset.catalog.position(item) for item in request.relevant] for request in requests.requests])
    values = per_request_metrics(ranked, relevant, ks)
    groups = popularity_groups(dataset)
    first = relevant[:, 0]
    breakdown = {}
    for index, name in enumerate(POPULARITY_GROUPS):
        mask = groups[first] == index
        breakdown[name] = {"requests": int(mask.sum()), **_mean(values, mask)}
    if dataset.cold_start_items:
        cold_rows = np.array([dataset.catalog.position(item) for item in dataset.cold_start_items])
        mask = np.isin(first, cold_rows)
        breakdown["cold_start"] = {"requests": int(mask.sum()), **_mean(values, mask)}
    return TaskResult(requests.task, requests.split, len(requests.requests), _mean(values), breakdown)


def evaluate_tasks(
    ranker: Ranker,
    dataset: PreparedDataset,
    tasks: Sequence[str],
    split: str = "test",
    ks: Sequence[int] = DEFAULT_KS,
    search_queries: Sequence[Query] | None = None,
) -> dict[str, TaskResult]:
    """``evaluate`` on the requests of each task of ``split`` (tasks without requests are left out).

    ``search_queries`` (e.g. a probe set) replaces the dataset's search queries.
    """
    results = {}
    for task in tasks:
        requests = task_requests(dataset, task, split, search_queries)
        if requests.requests:
            results[task] = evaluate(ranker, dataset, requests, ks)
    return results
