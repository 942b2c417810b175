"""Typed objects of the canonical dataset: catalog, user sequences, queries, splits.

Every file of a prepared dataset refers to items and users by their original ids
(ASIN, MovieLens id, ...); integer positions are derived in memory, never stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

SPLITS = ("train", "valid", "test")
TASKS = ("rec", "search")  # next-item recommendation from a history, search from a text query


@dataclass(frozen=True)
class Item:
    """One catalog entry: original id, title and every other text field the source has."""

    item_id: str
    title: str
    fields: dict[str, Any] = field(default_factory=dict)  # brand, categories (list of paths), description, price, ...
    text: str = ""  # the text actually embedded, rendered from the fields by the task's template

    def to_record(self) -> dict:
        return {"item_id": self.item_id, "title": self.title, "fields": self.fields, "text": self.text}

    @classmethod
    def from_record(cls, record: dict) -> Item:
        return cls(str(record["item_id"]), str(record.get("title") or ""), dict(record.get("fields") or {}), str(record.get("text") or ""))


class Catalog:
    """Items in a fixed order; ``position(item_id)`` gives the row used by every array downstream."""

    def __init__(self, items: Sequence[Item]):
        self.items: list[Item] = list(items)
        self._position = {item.item_id: row for row, item in enumerate(self.items)}
        if len(self._position) != len(self.items):
            seen: set[str] = set()
            duplicate = next(item.item_id for item in self.items if item.item_id in seen or seen.add(item.item_id))
            raise ValueError(f"duplicate item id {duplicate!r} in catalog")

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._position

    def __getitem__(self, item_id: str) -> Item:
        return self.items[self._position[item_id]]

    def position(self, item_id: str) -> int:
        return self._position[item_id]

    @property
    def ids(self) -> list[str]:
        return [item.item_id for item in self.items]

    @property
    def texts(self) -> list[str]:
        return [item.text for item in self.items]

    @property
    def titles(self) -> list[str]:
        return [item.title for item in self.items]


@dataclass(frozen=True)
class UserSequence:
    """One user's engagements in time order (timestamps in seconds where the source has them)."""

    user_id: str
    items: tuple[str, ...]
    timestamps: tuple[int, ...] | None = None

    def to_record(self) -> dict:
        return {
            "user_id": self.user_id,
            "items": list(self.items),
            "timestamps": list(self.timestamps) if self.timestamps is not None else None,
        }

    @classmethod
    def from_record(cls, record: dict) -> UserSequence:
        stamps = record.get("timestamps")
        return cls(
            str(record["user_id"]), tuple(str(i) for i in record["items"]), tuple(int(t) for t in stamps) if stamps is not None else None
        )


@dataclass(frozen=True)
class RecSplit:
    """Leave-one-out split of one user: the rest is training, second-last validates, last tests."""

    user_id: str
    train: tuple[str, ...]
    valid: str
    test: str

    @property
    def valid_history(self) -> tuple[str, ...]:
        return self.train

    @property
    def test_history(self) -> tuple[str, ...]:
        return (*self.train, self.valid)

    def to_record(self) -> dict:
        return {"user_id": self.user_id, "train": list(self.train), "valid": self.valid, "test": self.test}

    @classmethod
    def from_record(cls, record: dict) -> RecSplit:
        return cls(str(record["user_id"]), tuple(str(i) for i in record["train"]), str(record["valid"]), str(record["test"]))


@dataclass(frozen=True)
class Query:
    """A search request and its relevant items; ``user_id``/``position`` set for personalized search.

    ``position`` is the index of the relevant engagement in the user's sequence, so the history
    the user had when searching is ``sequence.items[:position]``.
    """

    query_id: str
    text: str
    items: tuple[str, ...]
    split: str
    source: str
    user_id: str | None = None
    position: int | None = None

    def to_record(self) -> dict:
        return {
            "query_id": self.query_id,
            "text": self.text,
            "items": list(self.items),
            "split": self.split,
            "source": self.source,
            "user_id": self.user_id,
            "position": self.position,
        }

    @classmethod
    def from_record(cls, record: dict) -> Query:
        position = record.get("position")
        user = record.get("user_id")
        return cls(
            str(record["query_id"]),
            str(record["text"]),
            tuple(str(i) for i in record["items"]),
            str(record["split"]),
            str(record.get("source") or ""),
            str(user) if user is not None else None,
            int(position) if position is not None else None,
        )


@dataclass(frozen=True)
class QueryLogEvent:
    """One line of a query log: a user (optional) searched ``text`` and engaged with ``item_id``."""

    text: str
    item_id: str
    user_id: str | None = None
    timestamp: int | None = None


@dataclass
class RawData:
    """What a loader returns before filtering, splitting and query building."""

    items: list[Item]
    sequences: list[UserSequence]
    source: dict[str, Any] = field(default_factory=dict)  # files read, their sha256, the loader name
    query_log: list[QueryLogEvent] | None = None  # only for sources that carry queries (logs, synthetic)
