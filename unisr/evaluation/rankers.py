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
from unisr.evaluation.metrics import pad_rows, top_k_from_scores
from unisr.evaluation.requests import EvalRequest


def _history_rows(dataset: PreparedDataset, requests: Sequence[EvalRequest]) -> np.ndarray:
    return pad_rows([[dataset.catalog.position(item) for item in request.history if item in dataset.catalog] for request in requests])


class PopularityRanker:
    """Most engaged-with items of the training parts; recommendation leaves out the history."""

    name = "popularity"

    def __init__(self, dataset: PreparedDataset):
        self.dataset = dataset
        self.counts = np.zeros(len(dataset.catalog))
        for split in dataset.splits:
            for item in split.train:
                self.counts[dataset.catalog.position(item)] += 1

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
            self._encoder = self._encoder or CachedEncoder(EmbedConfig(model=self.model, progress=False))
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
