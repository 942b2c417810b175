"""Full-ranking metrics, vectorized over requests: Recall@K and NDCG@K (binary relevance).

``ranked`` [R, L] holds catalog rows, best first (-1 = no item at that rank); ``relevant`` [R, M]
holds each request's relevant rows (-1 padding). A relevant item outside the list counts as a miss.
Recall@K = |relevant ∩ top K| / |relevant|; NDCG@K = DCG@K / ideal DCG@K with gains 1/log2(rank + 1).
With one relevant item per request (leave-one-out), Recall@K equals Hit@K.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_KS = (5, 10, 20)


def pad_rows(rows: Sequence[Sequence[int]], fill: int = -1) -> np.ndarray:
    """Ragged lists of ints → [len(rows), longest] array padded with ``fill``."""
    width = max((len(row) for row in rows), default=0)
    out = np.full((len(rows), max(width, 1)), fill, dtype=np.int64)
    for index, row in enumerate(rows):
        out[index, : len(row)] = row
    return out


def hits(ranked: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """[R, L] bool: the item at each rank is relevant to its request."""
    return ((ranked[:, :, None] == relevant[:, None, :]) & (relevant[:, None, :] >= 0)).any(axis=2) & (ranked >= 0)


def recall_at(hit: np.ndarray, relevant_count: np.ndarray, k: int) -> np.ndarray:
    """Per-request Recall@k."""
    return hit[:, :k].sum(axis=1) / np.maximum(relevant_count, 1)


def ndcg_at(hit: np.ndarray, relevant_count: np.ndarray, k: int) -> np.ndarray:
    """Per-request NDCG@k."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hit[:, :k] * discounts[: hit[:, :k].shape[1]]).sum(axis=1)
    ideal_cumulative = np.concatenate([[0.0], np.cumsum(discounts)])
    ideal = ideal_cumulative[np.minimum(relevant_count, k)]
    return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1), 0.0)


def per_request_metrics(ranked: np.ndarray, relevant: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, np.ndarray]:
    """``{"recall@5": [R], "ndcg@5": [R], ...}`` for every K (lists shorter than K count the missing ranks as misses)."""
    if len(ranked) != len(relevant):
        raise ValueError(f"{len(ranked)} rankings for {len(relevant)} requests")
    hit = hits(ranked, relevant)
    count = (relevant >= 0).sum(axis=1)
    result = {}
    for k in ks:
        result[f"recall@{k}"] = recall_at(hit, count, k)
        result[f"ndcg@{k}"] = ndcg_at(hit, count, k)
    return result


def top_k_from_scores(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Rows of the ``k`` best scores per request; ties go to the lower catalog row; ``exclude`` [R, H] rows are skipped."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    if exclude is not None:
        rows, cols = np.nonzero(exclude >= 0)
        scores[rows, exclude[rows, cols]] = -np.inf
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # stable sort: equal scores keep catalog order
    ranked = order.astype(np.int64)
    ranked[np.take_along_axis(scores, order, axis=1) == -np.inf] = -1
    return ranked
