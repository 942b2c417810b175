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
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from unisr.data.schema import SPLITS, Catalog, Item, Query, RecSplit, UserSequence
from unisr.errors import InputFileError, UnisrError
from unisr.io import read_json, read_jsonl, sha256_file

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES = {
    "items": "items.jsonl",
    "sequences": "sequences.jsonl",
    "splits": "rec_split.jsonl",
    "queries": "queries.jsonl",
    "cold_start": "cold_start.json",
}


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

    @property
    def name(self) -> str:
        return str(self.manifest.get("task", {}).get("name", ""))

    @property
    def fingerprint(self) -> str:
        """Identifies the data: later artifacts record it and refuse another dataset."""
        return str(self.manifest["fingerprint"])

    def queries_in(self, split: str) -> list[Query]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
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
    def load(cls, root: str | Path, verify: bool = False) -> PreparedDataset:
        """Read a prepared dataset; ``verify`` also checks every file against the manifest's sha256."""
        root = Path(root)
        if not (root / MANIFEST).is_file():
            raise UnisrError(f"{root}: not a prepared dataset (no {MANIFEST}; run `unisr data prepare TASK --out {root}`)")
        manifest = read_json(root / MANIFEST)
        if manifest.get("format_version") != FORMAT_VERSION:
            raise InputFileError(
                root / MANIFEST, f"format version {manifest.get('format_version')!r} is not {FORMAT_VERSION}", "prepare the dataset again"
            )
        for role, name in FILES.items():
            path = root / name
            if not path.is_file():
                raise InputFileError(path, f"{role} file missing from the prepared dataset", "prepare the dataset again")
            if verify and sha256_file(path) != manifest["files"][name]:
                raise InputFileError(path, "content does not match the manifest's sha256", "prepare the dataset again")
        catalog = Catalog([Item.from_record(record) for _, record in read_jsonl(root / FILES["items"])])
        sequences = [UserSequence.from_record(record) for _, record in read_jsonl(root / FILES["sequences"])]
        splits = [RecSplit.from_record(record) for _, record in read_jsonl(root / FILES["splits"])]
        queries = [Query.from_record(record) for _, record in read_jsonl(root / FILES["queries"])]
        cold = frozenset(str(item) for item in read_json(root / FILES["cold_start"]).get("items", []))
        return cls(root, manifest, catalog, sequences, splits, queries, cold)
