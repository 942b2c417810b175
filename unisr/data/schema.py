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


def _record_id(record: dict, key: str) -> str:
    """A required id field (str or int) as a non-empty str; ValueError naming the field otherwise."""
    if key not in record:
        raise ValueError(f"missing field {key!r}")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise ValueError(f"field {key!r} must be a non-empty id (string), got {value!r}")
    return str(value)


def _record_ids(record: dict, key: str) -> tuple[str, ...]:
    """A required list of ids as a tuple of str."""
    if not isinstance(record.get(key), list):
        raise ValueError(f"field {key!r} must be a list of ids, got {record.get(key)!r}" if key in record else f"missing field {key!r}")
    return tuple(_record_id({key: value}, key) for value in record[key])


def _record_text(record: dict, key: str, required: bool = False) -> str:
    """A text field (str; null or absent is "" unless required)."""
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} must be a string, got {value!r}" if key in record else f"missing field {key!r}")
    return value


def _record_integer(record: dict, key: str) -> int | None:
    value = record.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"field {key!r} must be an integer or null, got {value!r}")
    return value


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
        fields = record.get("fields") or {}
        if not isinstance(fields, dict):
            raise ValueError(f"field 'fields' must be an object, got {fields!r}")
        return cls(_record_id(record, "item_id"), _record_text(record, "title"), dict(fields), _record_text(record, "text"))


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
        items = _record_ids(record, "items")
        stamps = record.get("timestamps")
        if stamps is not None:
            if not isinstance(stamps, list) or len(stamps) != len(items):
                raise ValueError(f"field 'timestamps' must be null or a list of {len(items)} integers (one per item)")
            stamps = tuple(_record_integer({"timestamps": stamp}, "timestamps") for stamp in stamps)
            if None in stamps:
                raise ValueError("field 'timestamps' must hold integers, not null")
        return cls(_record_id(record, "user_id"), items, stamps)


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
        return cls(_record_id(record, "user_id"), _record_ids(record, "train"), _record_id(record, "valid"), _record_id(record, "test"))


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
        split = _record_text(record, "split", required=True)
        if split not in SPLITS:
            raise ValueError(f"field 'split' must be one of {', '.join(SPLITS)}, got {split!r}")
        position = _record_integer(record, "position")
        return cls(
            _record_id(record, "query_id"),
            _record_text(record, "text", required=True),
            _record_ids(record, "items"),
            split,
            _record_text(record, "source"),
            _record_id(record, "user_id") if record.get("user_id") is not None else None,
            position,
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
