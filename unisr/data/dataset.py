"""A prepared dataset directory: open formats plus a manifest, readable without the source files.

Layout (all JSON / JSONL, UTF-8; items and users by their original ids)::

    manifest.json      source, task, protocol, counts, sha256 of every file, unisr version
    items.jsonl        {"item_id", "title", "fields": {...}, "text"}           catalog order = row order downstream
    sequences.jsonl    {"user_id", "items": [...], "timestamps": [...] | null}  every kept user, time order
    rec_split.jsonl    {"user_id", "train": [...], "valid", "test"}              leave-one-out (cold-start items removed)
    queries.jsonl      {"query_id", "text", "items", "split", "source", "user_id", "position"}
    cold_start.json    {"items": [...]}                                          held-out test items (may be empty)

A query's ``position`` indexes the user's split sequence ``train + [valid, test]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TypeVar

import unisr
from unisr.data.schema import SPLITS, Catalog, Item, Query, RecSplit, UserSequence
from unisr.errors import InputFileError, UnisrError
from unisr.io import read_json, read_jsonl, sha256_file

T = TypeVar("T")
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES = {
    "items": "items.jsonl",
    "sequences": "sequences.jsonl",
    "splits": "rec_split.jsonl",
    "queries": "queries.jsonl",
    "cold_start": "cold_start.json",
}
LAZY_PARTS = ("sequences", "splits", "queries", "cold_start_items")  # what ``load(lazy=True)`` reads on first use


@dataclass
class PreparedDataset:
    """Everything later stages read: catalog, sequences, leave-one-out split, queries, cold-start items."""

    root: Path | None
    manifest: dict
    catalog: Catalog
    sequences: list[UserSequence]
    splits: list[RecSplit]
    queries: list[Query]
    cold_start_items: frozenset[str]

    def __getattr__(self, name: str):
        """A part that ``load(lazy=True)`` left unread: read and checked now, once (only called when ``name`` is not set)."""
        if name not in LAZY_PARTS or "root" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        value = _PART_READERS[name](self.root, self.catalog)
        setattr(self, name, value)
        return value

    @property
    def name(self) -> str:
        return str(self.manifest.get("task", {}).get("name", ""))

    @property
    def fingerprint(self) -> str:
        """Identifies the data: later artifacts record it and refuse another dataset."""
        return str(self.manifest["fingerprint"])

    def artifact_header(self) -> dict[str, str]:
        """The keys every artifact built on this dataset starts its manifest with: unisr version, dataset fingerprint and name."""
        return {"unisr_version": unisr.__version__, "dataset_fingerprint": self.fingerprint, "dataset_name": self.name}

    def queries_in(self, split: str) -> list[Query]:
        if split not in SPLITS:
            raise UnisrError(f"split {split!r}: choose one of {', '.join(SPLITS)}")
        return [query for query in self.queries if query.split == split]

    @cached_property
    def split_by_user(self) -> dict[str, RecSplit]:
        return {split.user_id: split for split in self.splits}

    def counts(self) -> dict[str, int]:
        return {
            "users": len(self.sequences),
            "items": len(self.catalog),
            "interactions": sum(len(sequence.items) for sequence in self.sequences),
        }

    def query_counts(self) -> dict[str, int]:
        counter = Counter(query.split for query in self.queries)
        return {split: counter.get(split, 0) for split in SPLITS}

    @classmethod
    def load(cls, root: str | Path, verify: bool = False, lazy: bool = False) -> PreparedDataset:
        """Read a prepared dataset; ``verify`` also checks every file against the manifest's sha256.

        ``lazy`` reads the manifest and the catalog now and each other part (``LAZY_PARTS``) on first use, so that a reader that
        needs only items and histories (a served run) does not parse the query log.
        """
        root = Path(root)
        if not (root / MANIFEST).is_file():
            raise UnisrError(f"{root}: not a prepared dataset (no {MANIFEST}; run `unisr data prepare TASK --out {root}`)")
        manifest = read_json(root / MANIFEST)
        if not isinstance(manifest, dict):
            raise InputFileError(root / MANIFEST, "expected a JSON object", "prepare the dataset again")
        if "kind" in manifest:  # codes and runs have a kind; prepared datasets do not
            raise UnisrError(f"{root}: not a prepared dataset (it holds a {manifest['kind']!r} manifest; pass a dataset directory)")
        if not isinstance(manifest.get("fingerprint"), str) or not isinstance(manifest.get("task", {}), dict):
            raise InputFileError(root / MANIFEST, "fingerprint or task is missing or damaged", "prepare the dataset again")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise InputFileError(
                root / MANIFEST, f"format version {manifest.get('format_version')!r} is not {FORMAT_VERSION}", "prepare the dataset again"
            )
        for role, name in FILES.items():
            path = root / name
            if not path.is_file():
                raise InputFileError(path, f"{role} file missing from the prepared dataset", "prepare the dataset again")
            if verify and sha256_file(path) != manifest.get("files", {}).get(name):
                raise InputFileError(path, "content does not match the manifest's sha256", "prepare the dataset again")
        items = _read_records(root / FILES["items"], Item.from_record, "item_id")
        catalog = Catalog([item for _, item in items])
        if not lazy:
            return cls(root, manifest, catalog, *(_PART_READERS[part](root, catalog) for part in LAZY_PARTS))
        dataset = cls.__new__(cls)  # the other parts come through __getattr__
        dataset.root, dataset.manifest, dataset.catalog = root, manifest, catalog
        return dataset


def _read_sequences(root: Path, catalog: Catalog) -> list[UserSequence]:
    sequences = _read_records(root / FILES["sequences"], UserSequence.from_record, "user_id")
    _check_known(root / FILES["sequences"], catalog, ((number, sequence.items) for number, sequence in sequences))
    return [sequence for _, sequence in sequences]


def _read_splits(root: Path, catalog: Catalog) -> list[RecSplit]:
    splits = _read_records(root / FILES["splits"], RecSplit.from_record, "user_id")
    _check_known(root / FILES["splits"], catalog, ((number, (*split.train, split.valid, split.test)) for number, split in splits))
    return [split for _, split in splits]


def _read_queries(root: Path, catalog: Catalog) -> list[Query]:
    return read_query_file(root / FILES["queries"], catalog)


def read_query_file(path: Path, catalog: Catalog, fix: str = "prepare the dataset again") -> list[Query]:
    """Queries of a JSONL file (one ``Query`` record per line) whose items are all in ``catalog``; errors name the line and ``fix``."""
    queries = _read_records(path, Query.from_record, "query_id", fix)
    _check_known(path, catalog, ((number, query.items) for number, query in queries), fix)
    return [query for _, query in queries]


def _read_cold_start(root: Path, catalog: Catalog) -> frozenset[str]:
    cold_record = read_json(root / FILES["cold_start"])
    cold_items = cold_record.get("items", []) if isinstance(cold_record, dict) else None
    if not isinstance(cold_items, list) or not all(isinstance(item, str) for item in cold_items):
        raise InputFileError(root / FILES["cold_start"], 'expected {"items": [item id, ...]}', "prepare the dataset again")
    _check_known(root / FILES["cold_start"], catalog, [(None, cold_items)])
    return frozenset(cold_items)


_PART_READERS: dict[str, Callable[[Path, Catalog], object]] = {
    "sequences": _read_sequences,
    "splits": _read_splits,
    "queries": _read_queries,
    "cold_start_items": _read_cold_start,
}


def _read_records(path: Path, parse: Callable[[dict], T], key: str, fix: str = "prepare the dataset again") -> list[tuple[int, T]]:
    """(line, object) of every record of a dataset file; a malformed record or a repeated ``key`` is an error naming its line."""
    parsed: list[tuple[int, T]] = []
    first_line: dict[str, int] = {}
    for number, record in read_jsonl(path):
        try:
            value = parse(record)
        except ValueError as error:
            raise InputFileError(path, str(error), fix, number) from None
        identifier = str(getattr(value, key))
        if identifier in first_line:
            problem = f"{key} {identifier!r} appears twice (first on line {first_line[identifier]})"
            raise InputFileError(path, problem, fix, number)
        first_line[identifier] = number
        parsed.append((number, value))
    return parsed


def _check_known(
    path: Path, known: Container[str], used: Iterable[tuple[int | None, Iterable[str]]], fix: str = "prepare the dataset again"
) -> None:
    """Refuse the first item id of ``path`` that the catalog (items.jsonl) lacks."""
    for number, items in used:
        for item in items:
            if item not in known:
                raise InputFileError(path, f"item {item!r} is not in {FILES['items']}", fix, number)
