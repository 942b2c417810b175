"""Training and evaluation examples of both tasks, as index arrays (tokens are looked up per batch).

An example row is (task, history of item rows, query text row or -1) with one or more targets; each
target is (target item row, how many of the row's history items it may see). Item rows index the ID
table and query rows index the dataset's query embeddings.
- rec, train, ``every_position``: a user's training part is cut into windows of at most
  ``max_history + 1`` items; one row per window, whose every item after the first is a target that
  sees the items before it (the causal encoder serves all of them in one pass). Windows after the
  first overlap the previous one by half, so every target sees at least ``max_history // 2 + 1``
  items where the user has them. Short training parts (most of them) are one window: then the targets
  are exactly the sliding-window examples below.
- rec, train, sliding window: every prefix (its last ``max_history`` items) predicts its next item,
  one row per target (TIGER's examples);
- rec, valid / test: the training part (plus the validation item for test) predicts the held-out item;
- search: one row per query, its relevant items (with an ID) as targets, with the user's history before it where known;
- index (training only, ``index_share`` > 0): one row per item, whose own text embedding is the query and its ID the target.
Items without a semantic ID are left out of histories, and targets without one are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from unisr.data.dataset import PreparedDataset
from unisr.data.schema import Query

REC, SEARCH, INDEX = 0, 1, 2  # INDEX: an item's own text → its ID (read with the search task token)


class Examples(NamedTuple):
    task: np.ndarray  # int64 [E], REC or SEARCH
    history: np.ndarray  # int64 [E, N], item rows, most recent last, -1 padding on the left
    query: np.ndarray  # int64 [E], query text row, -1 for recommendation
    request: np.ndarray  # int64 [E], request index
    user: np.ndarray  # int64 [E], hashed user bucket, -1 where unknown or unused
    first_target: np.ndarray  # int64 [E], index of the row's first target in the target arrays
    target_count: np.ndarray  # int64 [E], targets of the row (≥ 1)
    target_item: np.ndarray  # int64 [M], item row of each target
    target_visible: np.ndarray  # int64 [M], history items of its row (oldest first) the target may see

    def __len__(self) -> int:
        """Rows (encoder passes); ``targets`` counts what they teach."""
        return len(self.task)

    @property
    def targets(self) -> int:
        return len(self.target_item)

    def target_row(self) -> np.ndarray:
        """[M] row of each target."""
        return np.repeat(np.arange(len(self)), self.target_count)

    def subset(self, rows: np.ndarray) -> Examples:
        """Rows ``rows`` (repeats allowed) with their targets."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = self.target_count[rows]
        first = np.cumsum(counts) - counts
        flat = np.repeat(self.first_target[rows] - first, counts) + np.arange(int(counts.sum()))
        return Examples(
            self.task[rows],
            self.history[rows],
            self.query[rows],
            self.request[rows],
            self.user[rows],
            first,
            counts,
            self.target_item[flat],
            self.target_visible[flat],
        )

    @staticmethod
    def concat(parts: Sequence[Examples]) -> Examples:
        width = max((part.history.shape[1] for part in parts), default=0)
        shifts = np.cumsum([0] + [part.targets for part in parts])
        return Examples(
            np.concatenate([part.task for part in parts]),
            np.concatenate([np.pad(part.history, ((0, 0), (width - part.history.shape[1], 0)), constant_values=-1) for part in parts]),
            np.concatenate([part.query for part in parts]),
            np.concatenate([part.request for part in parts]),
            np.concatenate([part.user for part in parts]),
            np.concatenate([part.first_target + shift for part, shift in zip(parts, shifts[:-1], strict=True)]),
            np.concatenate([part.target_count for part in parts]),
            np.concatenate([part.target_item for part in parts]),
            np.concatenate([part.target_visible for part in parts]),
        )


def pad_histories(histories: Sequence[Sequence[int]], length: int) -> np.ndarray:
    """Left-padded [len(histories), length] array of the last ``length`` rows of each history."""
    out = np.full((len(histories), length), -1, dtype=np.int64)
    for row, history in enumerate(histories):
        recent = list(history)[-length:] if length else []
        if recent:
            out[row, length - len(recent) :] = recent
    return out


def user_bucket(user_id: str | None, buckets: int) -> int:
    """Stable hash bucket of a user id (-1 without a user or without buckets); Python's hash() is salted per process."""
    if user_id is None or buckets <= 0:
        return -1
    return int(hashlib.sha1(user_id.encode("utf-8")).hexdigest()[:12], 16) % buckets


def _examples(
    task: int, histories, queries, users, target_items: list[list[int]], target_visible: list[list[int]], length: int
) -> Examples:
    count = len(histories)
    counts = np.asarray([len(items) for items in target_items], dtype=np.int64).reshape(count)
    flat_items = [item for items in target_items for item in items]
    flat_visible = [visible for row in target_visible for visible in row]
    return Examples(
        np.full(count, task, dtype=np.int64),
        pad_histories(histories, length),
        np.asarray(queries, dtype=np.int64).reshape(count),
        np.arange(count, dtype=np.int64),
        np.asarray(users, dtype=np.int64).reshape(count),
        np.cumsum(counts) - counts,
        counts,
        np.asarray(flat_items, dtype=np.int64),
        np.asarray(flat_visible, dtype=np.int64),
    )


def position_windows(length: int, max_history: int) -> list[tuple[int, int, int]]:
    """Windows ``(start, first_target, last_target)`` (sequence positions) that make every position ≥ 1 a target once.

    The first window holds positions 0..max_history; each later one starts ``max_history`` before its last
    target and owns the next ``max(1, max_history // 2)`` targets, so each of them sees at least half a history.
    """
    windows, first, step = [], 1, max_history
    while first < length:
        last = min(length - 1, first + step - 1)
        windows.append((max(0, last - max_history), first, last))
        first, step = last + 1, max(1, max_history // 2)
    return windows


def rec_examples(
    dataset: PreparedDataset, item_row: dict[str, int], split: str, max_history: int, user_buckets: int = 0, every_position: bool = True
) -> Examples:
    """Recommendation examples of ``split`` (train: every position in one row per window, or a sliding window)."""
    histories, users, target_items, target_visible = [], [], [], []
    for user in dataset.splits:
        bucket = user_bucket(user.user_id, user_buckets)
        rows = [item_row[item] for item in user.train if item in item_row]
        if split == "train" and every_position:
            for start, first, last in position_windows(len(rows), max_history):
                histories.append(rows[start:last])
                target_items.append(rows[first : last + 1])
                target_visible.append(list(range(first - start, last - start + 1)))
                users.append(bucket)
        elif split == "train":
            for position in range(1, len(rows)):
                history = rows[max(0, position - max_history) : position]
                histories.append(history)
                target_items.append([rows[position]])
                target_visible.append([len(history)])
                users.append(bucket)
        else:
            target = user.valid if split == "valid" else user.test
            if target not in item_row:
                continue
            history = rows + ([item_row[user.valid]] if split == "test" and user.valid in item_row else [])
            history = history[-max_history:]
            histories.append(history)
            target_items.append([item_row[target]])
            target_visible.append([len(history)])
            users.append(bucket)
    return _examples(REC, histories, [-1] * len(histories), users, target_items, target_visible, max_history)


def search_examples(
    dataset: PreparedDataset,
    queries: Sequence[Query],
    item_row: dict[str, int],
    query_row: dict[str, int],
    max_history: int,
    with_history: bool,
    user_buckets: int = 0,
) -> Examples:
    """One row per query with its relevant items (with an ID) as targets; requests number the queries."""
    by_user = dataset.split_by_user
    histories, query_rows, users, target_items, target_visible = [], [], [], [], []
    for query in queries:
        items = [item_row[item] for item in query.items if item in item_row]
        if not items:
            continue
        history: list[int] = []
        if with_history and query.user_id is not None and query.position is not None and query.user_id in by_user:
            split = by_user[query.user_id]
            sequence = (*split.train, split.valid, split.test)
            history = [item_row[item] for item in sequence[: query.position] if item in item_row][-max_history:]
        histories.append(history)
        query_rows.append(query_row[query.text])
        users.append(user_bucket(query.user_id, user_buckets))
        target_items.append(items)
        target_visible.append([len(history)] * len(items))
    return _examples(SEARCH, histories, query_rows, users, target_items, target_visible, max_history)


def index_examples(items: int, query_offset: int, max_history: int) -> Examples:
    """One row per ID-table row: the item's own text vector (row ``query_offset + item``) → the item (DSI's indexing task)."""
    rows = list(range(items))
    queries = [query_offset + row for row in rows]
    return _examples(INDEX, [[]] * items, queries, [-1] * items, [[row] for row in rows], [[0]] * items, max_history)
