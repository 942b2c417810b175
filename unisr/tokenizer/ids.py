"""The ID table: item id ↔ semantic ID (residual codes + one collision token), a bijection.

The collision token is an item's ordinal within the group of items that share its residual codes,
in catalog order (deterministic); items given IDs later continue the ordinals of their group, so
existing IDs never change.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Container, Sequence
from pathlib import Path

import numpy as np

from unisr.errors import InputFileError, UnisrError
from unisr.io import atomic_write_bytes

ORIGINS = ("train", "assigned")  # coded with the tokenizer's training items / assigned later (new items)
TABLE_FIX = "train the codes again"
MAX_COLLISION_TOKEN = 2**31  # far above any group size; larger tokens are damage, not data


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
        self.lines: list[int] | None = None  # line of each row in the file it was loaded from
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

    def check_items(self, known: Container[str], path: Path, dataset: str) -> None:
        """Refuse a table naming an item that ``known`` (a dataset's catalog) lacks, at the item's line of ``path``."""
        for row, item in enumerate(self.item_ids):
            if item not in known:
                line = self.lines[row] if self.lines else row + 2
                raise InputFileError(path, f"item {item!r} is not in the catalog of dataset {dataset!r}", "train the codes again", line)

    @classmethod
    def load(cls, path: Path, id_length: int | None = None, codebook_size: int | None = None) -> IdTable:
        """Read what ``save`` wrote; with the tokenizer's ``id_length`` and ``codebook_size``, also refuse IDs of another
        length and residual codes outside the codebook. Every problem is one error naming its line."""
        path = Path(path)
        if not path.is_file():
            raise InputFileError(path, "ID table not found", "train codes with `unisr codes train`")
        try:
            with open(path, encoding="utf-8", newline="") as handle:
                return cls._read(csv.reader(handle), path, id_length, codebook_size)
        except UnicodeDecodeError as error:
            raise InputFileError(path, f"not UTF-8 text ({error.reason})", TABLE_FIX) from None
        except csv.Error as error:
            raise InputFileError(path, f"not a CSV table ({error})", TABLE_FIX) from None

    @classmethod
    def _read(cls, reader, path: Path, id_length: int | None, codebook_size: int | None) -> IdTable:
        header = next(reader, None)
        if not header or len(header) < 3 or header[0] != "item_id" or header[-1] != "origin":
            raise InputFileError(path, "not an ID table (expected header item_id,c0,...,origin)", TABLE_FIX, 1)
        width = len(header) - 2
        if id_length is not None and width != id_length:
            raise InputFileError(path, f"header has {width} code columns but the tokenizer's IDs have {id_length}", TABLE_FIX, 1)
        item_ids, codes, origins, lines = [], [], [], []
        item_line: dict[str, int] = {}
        id_line: dict[tuple[int, ...], tuple[str, int]] = {}
        for row in reader:
            number = reader.line_num
            if len(row) != width + 2:
                problem = f"expected {width + 2} columns (item_id, {width} codes, origin), got {len(row)}"
                raise InputFileError(path, problem, TABLE_FIX, number)
            item, origin = row[0].strip(), row[-1]
            if not item:
                raise InputFileError(path, "empty item id", TABLE_FIX, number)
            if origin not in ORIGINS:
                raise InputFileError(path, f"origin {origin!r} is not one of {', '.join(ORIGINS)}", TABLE_FIX, number)
            if item in item_line:
                raise InputFileError(path, f"item {item!r} appears twice (first on line {item_line[item]})", TABLE_FIX, number)
            semantic_id = tuple(_code(value, level, width, codebook_size, path, number) for level, value in enumerate(row[1:-1]))
            if semantic_id in id_line:
                other, other_line = id_line[semantic_id]
                problem = f"items {other!r} (line {other_line}) and {item!r} share a semantic ID"
                raise InputFileError(path, problem, "IDs must be unique; " + TABLE_FIX, number)
            item_line[item], id_line[semantic_id] = number, (item, number)
            item_ids.append(item)
            codes.append(semantic_id)
            origins.append(origin)
            lines.append(number)
        if not item_ids:
            raise InputFileError(path, "holds a header but no items", TABLE_FIX)
        table = cls(item_ids, np.array(codes, dtype=np.int64).reshape(len(item_ids), width), origins)
        table.lines = lines
        return table


def _code(value: str, level: int, width: int, codebook_size: int | None, path: Path, number: int) -> int:
    """One code of an ID table row: an integer in the codebook (residual levels) or a non-negative collision token (last)."""
    try:
        code = int(value)
    except ValueError:
        raise InputFileError(path, f"code {value!r} in column c{level} is not an integer", TABLE_FIX, number) from None
    collision = level == width - 1
    limit = MAX_COLLISION_TOKEN if collision or codebook_size is None else codebook_size
    if not 0 <= code < limit:
        what = "collision token" if collision else f"code in column c{level}"
        raise InputFileError(path, f"{what} {code} is outside 0..{limit - 1}", TABLE_FIX, number)
    return code


def table_record(table: IdTable) -> dict:
    """Manifest entries that pin an ID table: its row count and ``table_digest`` (rows assigned later may follow them)."""
    return {"id_table_rows": len(table), "id_table_sha256": table_digest(table)}


def table_digest(table: IdTable, rows: int | None = None) -> str:
    """sha256 of the first ``rows`` rows (default all) of an ID table: item ids and semantic IDs, independent of the CSV layout.

    Rows appended later (items given IDs with ``unisr codes assign``) leave the digest of the earlier rows unchanged.
    """
    rows = len(table) if rows is None else rows
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(table.semantic_ids[:rows], dtype="<i8").tobytes())
    digest.update("\n".join(table.item_ids[:rows]).encode("utf-8"))
    return digest.hexdigest()
