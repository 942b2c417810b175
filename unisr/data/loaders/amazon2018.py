"""Amazon Reviews 2018 in the LC-Rec format: ``<name>.inter.json`` and ``<name>.item.json``."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from unisr.data.loaders.common import build_catalog, require_id, require_listed, source_record, text_value
from unisr.data.schema import Item, RawData, UserSequence
from unisr.errors import InputFileError

LCREC_LOADER = "lcrec"
# LC-Rec joins a category path with "," but some Amazon category names contain ", " themselves
# ("Tapes, Adhesives & Sealants"), so only a comma not followed by whitespace separates levels.
CATEGORY_SEPARATOR = re.compile(r",(?!\s)")


class _Pairs(list):
    """The (key, value) pairs of one JSON object in file order, duplicates kept."""


def load_lcrec(interactions: Path, items: Path) -> RawData:
    """Load ``{user: [item, ...]}`` sequences in time order and ``{item: {title, description, brand, categories}}``."""
    interactions, items = Path(interactions), Path(items)
    sequences = [
        UserSequence(user, tuple(_item_ids(value, user, interactions)))
        for user, value in _unique_pairs(_read_object(interactions, "interaction file"), interactions, "user").items()
    ]
    known = {
        item_id: _item(item_id, value, items) for item_id, value in _unique_pairs(_read_object(items, "item file"), items, "item").items()
    }
    require_listed(((None, item_id) for sequence in sequences for item_id in sequence.items), known, interactions, items)
    return RawData(build_catalog(sequences, known), sequences, source_record(LCREC_LOADER, {"interactions": interactions, "items": items}))


def _read_object(path: Path, what: str) -> _Pairs:
    """Parse a whole JSON file whose top level must be an object, keeping duplicate keys."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_Pairs)
    except FileNotFoundError:
        raise InputFileError(path, f"{what} not found", "check the path") from None
    except UnicodeDecodeError as error:
        raise InputFileError(path, f"not UTF-8 text ({error.reason})", "re-encode the file as UTF-8") from None
    except json.JSONDecodeError as error:
        raise InputFileError(path, f"not valid JSON ({error.msg})", "fix the file", error.lineno) from None
    if not isinstance(value, _Pairs):
        raise InputFileError(path, f"expected a JSON object at the top level, got {type(value).__name__}", "use the LC-Rec format")
    return value


def _unique_pairs(pairs: _Pairs, path: Path, what: str) -> dict[str, Any]:
    """The pairs as a dict; a repeated key is a duplicate user or item id."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InputFileError(path, f"duplicate {what} id {key!r}", f"keep one entry per {what}")
        result[require_id(key, f"{what} id", path, None)] = value
    return result


def _item_ids(value: Any, user: str, path: Path) -> list[str]:
    """One user's list of item ids (ints or strings) as strings."""
    if not isinstance(value, list) or not value or any(isinstance(item, (bool, float, list, dict)) or item is None for item in value):
        raise InputFileError(path, f"user {user!r} must map to a non-empty list of item ids", "use {user: [item, ...]}")
    return [require_id(item, f"item id of user {user!r}", path, None) for item in value]


def _item(item_id: str, value: Any, path: Path) -> Item:
    """One item record: title, and description, brand and categories where non-empty."""
    if not isinstance(value, _Pairs):
        raise InputFileError(path, f"item {item_id!r} must map to an object", "use {item: {title, description, brand, categories}}")
    record = dict(value)
    fields: dict[str, Any] = {key: text for key in ("brand", "description") if (text := text_value(record.get(key)))}
    if categories := _category_path(record.get("categories"), item_id, path):
        fields["categories"] = [categories]
    return Item(item_id, text_value(record.get("title")), fields)


def _category_path(value: Any, item_id: str, path: Path) -> list[str]:
    """Split a comma-joined category path (a list is taken as the path itself); empty → []."""
    if isinstance(value, list):
        return [name for name in map(text_value, value) if name]
    if value is not None and not isinstance(value, str):
        raise InputFileError(path, f"categories of item {item_id!r} must be a string", "use one comma-joined path")
    return [name.strip() for name in CATEGORY_SEPARATOR.split(value or "") if name.strip()]
