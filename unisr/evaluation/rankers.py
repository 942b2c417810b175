"""Rankers under the one evaluator: popularity, BM25, dense (same sentence encoder) and the generative model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rank_bm25 import BM25Okapi

from unisr.data.dataset import PreparedDataset
from unisr.data.text import content_words
from unisr.decoder.retriever import GenerativeRetriever
from unisr.embeddings import CachedEncoder, DatasetEmbeddings, EmbedConfig
from unisr.errors import UnisrError
from unisr.evaluation.evaluator import engagement_counts
from unisr.evaluation.metrics import pad_rows, top_k_from_scores
from unisr.evaluation.requests import EvalRequest


def _history_rows(dataset: PreparedDataset, requests: Sequence[EvalRequest]) -> np.ndarray:
    return pad_rows([[dataset.catalog.position(item) for item in request.history if item in dataset.catalog] for request in requests])


class PopularityRanker:
    """Most engaged-with items of the training parts; recommendation leaves out the history."""

    name = "popularity"

    def __init__(self, dataset: PreparedDataset):
        self.dataset = dataset
        self.counts = engagement_counts(dataset).astype(np.float64)

    def rank(self, task: str, requests: Sequence[EvalRequest], k: int) -> np.ndarray:
        scores = np.broadcast_to(self.counts, (len(requests), len(self.counts)))
        return top_k_from_scores(scores, k, _history_rows(self.dataset, requests) if task == "rec" else None)


class BM25Ranker:
    """rank-bm25 (Okapi) over the embedded item text; search only. Scores are cached per distinct query text."""

    name = "bm25"

    def __init__(self, dataset: PreparedDataset):
        self.dataset = dataset
        self.index = BM25Okapi([content_words(item.text) or ["∅"] for item in dataset.catalog])
        self._scores: dict[str, np.ndarray] = {}

    def _query_scores(self, text: str) -> np.ndarray:
        if text not in self._scores:
            self._scores[text] = self.index.get_scores(content_words(text))
        return self._scores[text]

    def rank(self, task: str, requests: Sequence[EvalRequest], k: int) -> np.ndarray:
        if task != "search":
            raise UnisrError("the bm25 baseline ranks search requests only")
        return top_k_from_scores(np.stack([self._query_scores(request.query or "") for request in requests]), k)


class DenseRanker:
    """Cosine similarity in the frozen sentence-embedding space: query → items (search); last history item → items (rec, content kNN)."""

    name = "dense"

    def __init__(self, dataset: PreparedDataset, embeddings: DatasetEmbeddings):
        self.dataset = dataset
        self.items = embeddings.items / np.linalg.norm(embeddings.items, axis=1, keepdims=True).clip(min=1e-12)
        self.query_row = {text: row for row, text in enumerate(embeddings.query_texts)}
        self.queries = embeddings.queries
        self.model = embeddings.meta["model"]
        self._encoder: CachedEncoder | None = None

    def _query_vectors(self, texts: list[str]) -> np.ndarray:
        missing = [text for text in texts if text not in self.query_row]
        if missing:
            self._encoder = self._encoder or CachedEncoder(EmbedConfig(model=self.model, progress=False), persist=False)
            vectors, _ = self._encoder.encode(texts)
        else:
            vectors = self.queries[[self.query_row[text] for text in texts]]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)

    def rank(self, task: str, requests: Sequence[EvalRequest], k: int) -> np.ndarray:
        if task == "search":
            return top_k_from_scores(self._query_vectors([request.query or "" for request in requests]) @ self.items.T, k)
        history = _history_rows(self.dataset, requests)
        last = history[np.arange(len(history)), np.maximum((history >= 0).sum(axis=1) - 1, 0)]
        scores = self.items[np.maximum(last, 0)] @ self.items.T
        scores[last < 0] = 0.0
        return top_k_from_scores(scores, k, history)


class GenerativeRanker:
    """The trained decoder: constrained beam search; recommendation leaves out the history."""

    name = "generative"

    def __init__(self, retriever: GenerativeRetriever):
        self.retriever = retriever
        self.dataset = retriever.dataset

    def rank(self, task: str, requests: Sequence[EvalRequest], k: int) -> np.ndarray:
        if task == "rec":
            answers = self.retriever.recommend_batch([list(r.history) for r in requests], k, users=[r.user for r in requests])
        else:
            answers = self.retriever.search_batch(
                [r.query or "" for r in requests], k, users=[r.user for r in requests], histories=[list(r.history) for r in requests]
            )
        ranked = np.full((len(requests), k), -1, dtype=np.int64)
        for row, answer in enumerate(answers):
            ranked[row, : len(answer)] = [self.dataset.catalog.position(result.item_id) for result in answer]
        return ranked


RRF_CONSTANT = 60  # reciprocal rank fusion's k (Cormack et al., 2009): a rank r contributes 1 / (k + r)


def reciprocal_rank_fusion(rankings: Sequence[np.ndarray], k: int, constant: int = RRF_CONSTANT) -> tuple[np.ndarray, np.ndarray]:
    """Fuse ranked rows ``[R, depth]`` (-1 = none) of several rankers: (top ``k`` rows ``[R, k]``, their fused scores)."""
    requests = len(rankings[0])
    ranked = np.concatenate(rankings, axis=1)
    ranks = np.concatenate([np.broadcast_to(np.arange(1, part.shape[1] + 1), part.shape) for part in rankings], axis=1)
    contribution = np.where(ranked >= 0, 1.0 / (constant + ranks), 0.0)
    flat_rows = np.repeat(np.arange(requests), ranked.shape[1])
    candidates = ranked.reshape(-1)
    keep = candidates >= 0
    pairs, inverse = np.unique(np.stack([flat_rows[keep], candidates[keep]], axis=1), axis=0, return_inverse=True)
    totals = np.bincount(inverse.reshape(-1), weights=contribution.reshape(-1)[keep], minlength=len(pairs))
    order = np.lexsort((pairs[:, 1], -totals, pairs[:, 0]))  # by request, best fused score first, ties to the lower row
    pairs, totals = pairs[order], totals[order]
    first = np.searchsorted(pairs[:, 0], np.arange(requests))
    position = np.arange(len(pairs)) - first[pairs[:, 0]]
    top = position < k
    fused = np.full((requests, k), -1, dtype=np.int64)
    scores = np.zeros((requests, k))
    fused[pairs[top, 0], position[top]] = pairs[top, 1]
    scores[pairs[top, 0], position[top]] = totals[top]
    return fused, scores


class FusedRanker:
    """Reciprocal rank fusion of several rankers (e.g. the generative model with BM25 or dense): a hybrid, off by default."""

    def __init__(self, rankers: Sequence, depth: int = 0, constant: int = RRF_CONSTANT):
        self.rankers = list(rankers)
        self.depth = depth  # items taken from each ranker (0 = the k asked for)
        self.constant = constant
        self.name = "+".join(ranker.name for ranker in self.rankers)

    def rank_with_scores(self, task: str, requests: Sequence[EvalRequest], k: int) -> tuple[np.ndarray, np.ndarray]:
        depth = max(k, self.depth)
        return reciprocal_rank_fusion([ranker.rank(task, requests, depth) for ranker in self.rankers], k, self.constant)

    def rank(self, task: str, requests: Sequence[EvalRequest], k: int) -> np.ndarray:
        return self.rank_with_scores(task, requests, k)[0]
