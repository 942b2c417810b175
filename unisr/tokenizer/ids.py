"""The ID table: item id ↔ semantic ID (residual codes + one collision token), a bijection.

The collision token is an item's ordinal within the group of items that share its residual codes,
in catalog order (deterministic); items given IDs later continue the ordinals of their group, so
existing IDs never change.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unisr.errors import InputFileError, UnisrError
from unisr.io import atomic_write_bytes

ORIGINS = ("train", "assigned")  # coded with the tokenizer's training items / assigned later (new items)


def collision_tokens(codes: np.ndarray, start: dict[tuple[int, ...], int] | None = None) -> np.ndarray:
    """Ordinal of each row within its group of equal code rows (first occurrence → 0, or ``start[group]``)."""
    start = start or {}
    if len(codes) == 0:
        return np.zeros(0, dtype=np.int64)
    _, inverse = np.unique(codes, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    sorted_groups = inverse[order]
    group_start = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    ordinal_sorted = np.arange(len(order)) - np.repeat(group_start, np.diff(np.r_[group_start, len(order)]))
    ordinals = np.empty(len(order), dtype=np.int64)
    ordinals[order] = ordinal_sorted
    if start:
        offsets = np.array([start.get(tuple(row), 0) for row in codes.tolist()], dtype=np.int64)
        ordinals = ordinals + offsets
    return ordinals


class IdTable:
    """Item ids and their semantic IDs ``[n, levels + 1]``; lookups both ways."""

    def __init__(self, item_ids: Sequence[str], semantic_ids: np.ndarray, origins: Sequence[str]):
        self.item_ids = list(item_ids)
        self.semantic_ids = np.asarray(semantic_ids, dtype=np.int64).reshape(len(self.item_ids), -1)
        self.origins = list(origins)
        self._row = {item: row for row, item in enumerate(self.item_ids)}
        self._by_id = {tuple(row): index for index, row in enumerate(self.semantic_ids.tolist())}
        if len(self._row) != len(self.item_ids):
            raise UnisrError("ID table: an item id appears twice")
        if len(self._by_id) != len(self.item_ids):
            raise UnisrError("ID table: two items share a semantic ID (the collision token must make them unique)")

    def __len__(self) -> int:
        return len(self.item_ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row

    @property
    def id_length(self) -> int:
        return self.semantic_ids.shape[1]

    def semantic_id(self, item_id: str) -> tuple[int, ...]:
        if item_id not in self._row:
            raise UnisrError(f"item {item_id!r} has no semantic ID (assign one with `unisr codes assign`)")
        return tuple(self.semantic_ids[self._row[item_id]].tolist())

    def item_id(self, semantic_id: Sequence[int]) -> str | None:
        """The item with this semantic ID, or None."""
        index = self._by_id.get(tuple(int(code) for code in semantic_id))
        return None if index is None else self.item_ids[index]

    def group_sizes(self) -> dict[tuple[int, ...], int]:
        """Items per residual-code prefix (all tokens but the collision token)."""
        prefixes, counts = np.unique(self.semantic_ids[:, :-1], axis=0, return_counts=True)
        return {tuple(prefix): int(count) for prefix, count in zip(prefixes.tolist(), counts.tolist(), strict=True)}

    def extended(self, item_ids: Sequence[str], codes: np.ndarray, origin: str = "assigned") -> IdTable:
        """A new table with ``item_ids`` (residual ``codes``) appended; existing IDs unchanged."""
        clash = [item for item in item_ids if item in self._row]
        if clash:
            raise UnisrError(f"item {clash[0]!r} already has a semantic ID")
        codes = np.asarray(codes, dtype=np.int64).reshape(len(item_ids), self.id_length - 1)
        tokens = collision_tokens(codes, self.group_sizes())
        new_ids = np.concatenate([codes, tokens[:, None]], axis=1)
        return IdTable(
            self.item_ids + list(item_ids), np.concatenate([self.semantic_ids, new_ids]), self.origins + [origin] * len(item_ids)
        )

    @classmethod
    def from_codes(cls, item_ids: Sequence[str], codes: np.ndarray) -> IdTable:
        codes = np.asarray(codes, dtype=np.int64)
        return cls(item_ids, np.concatenate([codes, collision_tokens(codes)[:, None]], axis=1), ["train"] * len(item_ids))

    def save(self, path: Path) -> None:
        """CSV ``item_id,c0,...,c{L},origin`` (the last code column is the collision token), written atomically."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["item_id", *[f"c{level}" for level in range(self.id_length)], "origin"])
        for item, row, origin in zip(self.item_ids, self.semantic_ids.tolist(), self.origins, strict=True):
            writer.writerow([item, *row, origin])
        atomic_write_bytes(Path(path), buffer.getvalue().encode("utf-8"))

    @classmethod
    def load(cls, path: Path) -> IdTable:
        path = Path(path)
        if not path.is_file():
            raise InputFileError(path, "ID table not found", "train codes with `unisr codes train`")
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows or rows[0][0] != "item_id" or rows[0][-1] != "origin":
            raise InputFileError(path, "not an ID table (expected header item_id,c0,...,origin)", "train the codes again", 1)
        width = len(rows[0]) - 2
        item_ids, codes, origins = [], [], []
        for number, row in enumerate(rows[1:], start=2):
            if len(row) != width + 2 or row[-1] not in ORIGINS:
                raise InputFileError(path, f"expected {width + 2} columns ending in an origin", "train the codes again", number)
            try:
                codes.append([int(value) for value in row[1:-1]])
            except ValueError:
                raise InputFileError(path, "codes must be integers", "train the codes again", number) from None
            item_ids.append(row[0])
            origins.append(row[-1])
        try:
            return cls(item_ids, np.array(codes, dtype=np.int64).reshape(len(item_ids), width), origins)
        except UnisrError as error:
            raise InputFileError(path, str(error), "train the codes again") from None
