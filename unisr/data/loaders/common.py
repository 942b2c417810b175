"""Helpers shared by the loader modules: line reading, record parsing, grouping, provenance."""

from __future__ import annotations

import ast
import gzip
import json
import math
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unisr.data.schema import Item, UserSequence
from unisr.errors import InputFileError
from unisr.io import sha256_file

GZIP_MAGIC = b"\x1f\x8b"
MALFORMED_FIX = "fix or remove that line"


def numbered_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield (line number, line without its newline) of a plain or gzipped text file."""
    with open(path, "rb") as probe:
        compressed = probe.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rt", encoding=encoding, newline="\n") as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line.rstrip("\r\n")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        kind = "gzipped " if compressed else ""
        raise InputFileError(
            path, f"cannot read as {kind}{encoding} text ({error})", "re-download the file or check its encoding"
        ) from None


def parse_record(line: str, path: Path, number: int, python_literal: bool = False) -> dict:
    """Parse one line as a JSON object, or as a Python literal dict when ``python_literal`` (never eval)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        if not python_literal:
            raise InputFileError(path, f"not valid JSON ({error.msg})", MALFORMED_FIX, number) from None
        try:
            record = ast.literal_eval(line.strip())
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise InputFileError(path, "neither JSON nor a Python literal", MALFORMED_FIX, number) from None
    if not isinstance(record, dict):
        raise InputFileError(path, f"expected an object per line, got {type(record).__name__}", MALFORMED_FIX, number)
    return record


def parse_timestamp(value: Any, path: Path, number: int) -> int:
    """Return ``value`` as integer seconds (881250949, "881250949" or "881250949.0"); anything else is an error."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number_value = math.nan
    if isinstance(value, (str, float)):
        try:
            number_value = float(value)
        except ValueError:
            pass
    if not number_value.is_integer():
        raise InputFileError(path, f"timestamp {value!r} is not an integer", "use integer Unix seconds", number)
    return int(number_value)


def require_id(value: Any, what: str, path: Path, number: int | None) -> str:
    """Return a non-empty id as str; a missing or empty id is a one-line error."""
    if value is None or isinstance(value, (bool, dict, list)) or not str(value).strip():
        raise InputFileError(path, f"missing or empty {what}", MALFORMED_FIX, number)
    return str(value).strip()


def text_value(value: Any) -> str:
    """A text field as one stripped string: None is "", a list is joined with spaces."""
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(text_value(part) for part in value if text_value(part))
    return str(value).strip()


def category_paths(value: Any) -> list[list[str]]:
    """Normalize a list of category paths (lists of str); raise ValueError on any other shape."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(path, list) for path in value):
        raise ValueError("categories must be a list of category paths (lists of strings)")
    paths = [[text_value(name) for name in path if text_value(name)] for path in value]
    return [path for path in paths if path]


def group_sequences(users: Sequence[str], items: Sequence[str], times: Sequence[int]) -> list[UserSequence]:
    """Group interactions by user (first-appearance order) and sort each by time, ties in input order."""
    if not users:
        return []
    codes: dict[str, int] = {}
    user_codes = np.fromiter((codes.setdefault(user, len(codes)) for user in users), dtype=np.int64, count=len(users))
    stamps = np.asarray(times, dtype=np.int64)
    order = np.lexsort((stamps, user_codes))  # stable: equal (user, time) keep their input order
    chunks = np.split(order, np.flatnonzero(np.diff(user_codes[order])) + 1)
    item_array = np.asarray(items, dtype=object)
    return [
        UserSequence(user, tuple(item_array[chunk].tolist()), tuple(stamps[chunk].tolist()))
        for user, chunk in zip(codes, chunks, strict=True)
    ]


def require_listed(used: Iterable[tuple[int | None, str]], listed: Container[str], path: Path, items_path: Path) -> None:
    """Raise on the first (line, item id) used in ``path`` that the item file ``items_path`` does not list."""
    for number, item_id in used:
        if item_id not in listed:
            raise InputFileError(
                path, f"item {item_id!r} is not listed in {items_path}", f"add it to {items_path.name} or remove it here", number
            )


def build_catalog(sequences: Sequence[UserSequence], known: Mapping[str, Item]) -> list[Item]:
    """Items in order of first appearance across the sequences; unknown ids get an empty Item."""
    order = dict.fromkeys(item_id for sequence in sequences for item_id in sequence.items)
    return [known.get(item_id) or Item(item_id, "") for item_id in order]


def source_record(loader: str, files: Mapping[str, Path], **options: Any) -> dict[str, Any]:
    """Provenance of a load: loader name, every file's path and sha256, and non-path options."""
    record: dict[str, Any] = {
        "loader": loader,
        "files": {name: {"path": str(path), "sha256": sha256_file(path)} for name, path in files.items()},
    }
    if options:
        record["options"] = dict(options)
    return record
