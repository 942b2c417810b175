"""Training and evaluation examples of both tasks, as index arrays (tokens are looked up per batch).

An example is (task, history of item rows, query text row or -1, target item row), where item rows
index the ID table and query rows index the dataset's query embeddings.
- rec, train: every prefix of each user's training part predicts its next item (sliding window);
- rec, valid / test: the training part (plus the validation item for test) predicts the held-out item;
- search: each query → each of its relevant items, with the user's history before it where known.
Items without a semantic ID are left out of histories, and examples whose target has none are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from unisr.data.dataset import PreparedDataset
from unisr.data.schema import Query

REC, SEARCH = 0, 1


class Examples(NamedTuple):
    task: np.ndarray  # int64 [E], REC or SEARCH
    history: np.ndarray  # int64 [E, N], item rows, most recent last, -1 padding on the left
    query: np.ndarray  # int64 [E], query text row, -1 for recommendation
    target: np.ndarray  # int64 [E], item row
    request: np.ndarray  # int64 [E], request index (several relevant items of one query share it)
    user: np.ndarray  # int64 [E], hashed user bucket, -1 where unknown or unused

    def __len__(self) -> int:
        return len(self.target)

    def subset(self, rows: np.ndarray) -> Examples:
        return Examples(*(array[rows] for array in self))

    @staticmethod
    def concat(parts: Sequence[Examples]) -> Examples:
        return Examples(*(np.concatenate([getattr(part, field) for part in parts]) for field in Examples._fields))


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


def _examples(task: int, histories, queries, targets, requests, users, length: int) -> Examples:
    count = len(targets)
    return Examples(
        np.full(count, task, dtype=np.int64),
        pad_histories(histories, length),
        np.asarray(queries, dtype=np.int64).reshape(count),
        np.asarray(targets, dtype=np.int64).reshape(count),
        np.asarray(requests, dtype=np.int64).reshape(count),
        np.asarray(users, dtype=np.int64).reshape(count),
    )


def rec_examples(dataset: PreparedDataset, item_row: dict[str, int], split: str, max_history: int, user_buckets: int = 0) -> Examples:
    """Recommendation examples of ``split`` (train: sliding window over the training parts)."""
    histories, targets, users = [], [], []
    for user in dataset.splits:
        bucket = user_bucket(user.user_id, user_buckets)
        rows = [item_row[item] for item in user.train if item in item_row]
        if split == "train":
            for position in range(1, len(rows)):
                histories.append(rows[max(0, position - max_history) : position])
                targets.append(rows[position])
                users.append(bucket)
        else:
            target = user.valid if split == "valid" else user.test
            if target not in item_row:
                continue
            history = rows + ([item_row[user.valid]] if split == "test" and user.valid in item_row else [])
            histories.append(history)
            targets.append(item_row[target])
            users.append(bucket)
    return _examples(REC, histories, [-1] * len(targets), targets, range(len(targets)), users, max_history)


def search_examples(
    dataset: PreparedDataset,
    queries: Sequence[Query],
    item_row: dict[str, int],
    query_row: dict[str, int],
    max_history: int,
    with_history: bool,
    user_buckets: int = 0,
) -> Examples:
    """One example per (query, relevant item with an ID); requests number the queries."""
    by_user = dataset.split_by_user
    histories, query_rows, targets, requests, users = [], [], [], [], []
    for request, query in enumerate(queries):
        history: list[int] = []
        if with_history and query.user_id is not None and query.position is not None and query.user_id in by_user:
            split = by_user[query.user_id]
            sequence = (*split.train, split.valid, split.test)
            history = [item_row[item] for item in sequence[: query.position] if item in item_row]
        for item in query.items:
            if item in item_row:
                histories.append(history)
                query_rows.append(query_row[query.text])
                targets.append(item_row[item])
                requests.append(request)
                users.append(user_bucket(query.user_id, user_buckets))
    return _examples(SEARCH, histories, query_rows, targets, requests, users, max_history)
