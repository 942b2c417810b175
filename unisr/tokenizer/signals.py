"""Training signals of the tokenizer, from the training split only (no held-out target, no cold item).

- search: (query text row, item row) for every relevant item of every training query;
- co-engagement: (item row, item row) for items at most ``window`` steps apart in a user's training
  part, with a sampling weight (uniform or 1/distance).
Held-out views (for the health report): validation transitions (last training item → validation
target) and validation queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from unisr.data.dataset import PreparedDataset
from unisr.data.schema import Query


class PairSet(NamedTuple):
    left: np.ndarray  # int64 [n]
    right: np.ndarray  # int64 [n]
    weight: np.ndarray  # float64 [n], sampling weight

    def __len__(self) -> int:
        return len(self.left)


def _flatten(sequences: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(sequence) for sequence in sequences], dtype=np.int64)
    flat = np.fromiter((row for sequence in sequences for row in sequence), dtype=np.int64, count=int(lengths.sum()))
    return flat, np.repeat(np.arange(len(sequences)), lengths)


def co_engagement_pairs(sequences: Sequence[Sequence[int]], window: int, weighting: str) -> PairSet:
    """Pairs of items at most ``window`` apart within one sequence (rows), self-pairs dropped."""
    flat, owner = _flatten(sequences)
    lefts, rights, weights = [], [], []
    for distance in range(1, window + 1):
        same = owner[:-distance] == owner[distance:]
        left, right = flat[:-distance][same], flat[distance:][same]
        keep = left != right
        lefts.append(left[keep])
        rights.append(right[keep])
        weights.append(np.full(int(keep.sum()), 1.0 / distance if weighting == "inverse_distance" else 1.0))
    if not lefts:
        return PairSet(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    return PairSet(np.concatenate(lefts), np.concatenate(rights), np.concatenate(weights))


def search_pairs(queries: Sequence[Query], query_row: dict[str, int], item_row: dict[str, int]) -> PairSet:
    """(query text row, item row) for each relevant item that has a row (coded items only)."""
    pairs = [(query_row[query.text], item_row[item]) for query in queries for item in query.items if item in item_row]
    array = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return PairSet(array[:, 0], array[:, 1], np.ones(len(array)))


class TrainingSignals(NamedTuple):
    search: PairSet  # training queries → items
    co_engagement: PairSet  # training sequences
    valid_transitions: PairSet  # (last training item, validation target), both coded and distinct
    valid_queries: PairSet  # validation queries → items


def build_signals(
    dataset: PreparedDataset, item_row: dict[str, int], query_row: dict[str, int], window: int, weighting: str
) -> TrainingSignals:
    """All signals of ``dataset``; ``item_row`` maps the items being coded (cold items excluded) to rows."""
    train_sequences = [[item_row[item] for item in split.train if item in item_row] for split in dataset.splits]
    transitions = [
        (item_row[split.train[-1]], item_row[split.valid])
        for split in dataset.splits
        if split.train and split.train[-1] in item_row and split.valid in item_row and split.train[-1] != split.valid
    ]
    transition_array = np.array(transitions, dtype=np.int64).reshape(-1, 2)
    return TrainingSignals(
        search=search_pairs(dataset.queries_in("train"), query_row, item_row),
        co_engagement=co_engagement_pairs(train_sequences, window, weighting),
        valid_transitions=PairSet(transition_array[:, 0], transition_array[:, 1], np.ones(len(transition_array))),
        valid_queries=search_pairs(dataset.queries_in("valid"), query_row, item_row),
    )
