"""Amazon Reviews 2014 (McAuley): the P5/TIGER processed files and the original review/metadata dumps."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from unisr.data.loaders.common import (
    MALFORMED_FIX,
    build_catalog,
    category_paths,
    group_sequences,
    numbered_lines,
    parse_record,
    parse_timestamp,
    require_id,
    require_listed,
    source_record,
    text_value,
)
from unisr.data.schema import Item, RawData, UserSequence
from unisr.errors import InputFileError, UnisrError
from unisr.io import read_jsonl, require_file

PROCESSED_LOADER = "amazon2014"
DUMPS_LOADER = "amazon2014_dumps"
DEFAULT_MIN_COUNT = 5  # the "5-core" of the published dumps


def load_amazon2014_processed(sequences: Path, items: Path) -> RawData:
    """Load ``user_sequence.txt`` (reviewerID ASIN ... in time order) and ``item_text.jsonl``."""
    sequences, items = Path(sequences), Path(items)
    require_file(sequences, "sequences file", "pass user_sequence.txt ('reviewerID ASIN ASIN ...' per line)")
    require_file(items, "item file", "pass item_text.jsonl (one JSON object per item)")
    users, lines = _read_user_sequences(sequences)
    known = _read_item_text(items)
    require_listed(
        ((number, item_id) for user, number in zip(users, lines, strict=True) for item_id in user.items), known, sequences, items
    )
    return RawData(build_catalog(users, known), users, source_record(PROCESSED_LOADER, {"sequences": sequences, "items": items}))


def _read_user_sequences(path: Path) -> tuple[list[UserSequence], list[int]]:
    """Parse one ``reviewerID ASIN ASIN ...`` line per user; return sequences and their line numbers."""
    users: list[UserSequence] = []
    first_line: dict[str, int] = {}
    for number, line in numbered_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 2:
            raise InputFileError(path, f"user {tokens[0]!r} has no items", "expected 'reviewerID ASIN ASIN ...'", number)
        if tokens[0] in first_line:
            raise InputFileError(
                path, f"duplicate user {tokens[0]!r} (first on line {first_line[tokens[0]]})", "keep one line per user", number
            )
        first_line[tokens[0]] = number
        users.append(UserSequence(tokens[0], tuple(tokens[1:])))
    return users, list(first_line.values())


def _read_item_text(path: Path) -> dict[str, Item]:
    """Parse ``item_text.jsonl``: asin, title, categories (paths), brand_group (int or null)."""
    known: dict[str, Item] = {}
    try:
        for number, record in read_jsonl(path):
            asin = require_id(record.get("asin"), "asin", path, number)
            if asin in known:
                raise InputFileError(path, f"duplicate item {asin!r}", "keep one line per item", number)
            known[asin] = Item(asin, text_value(record.get("title")), _processed_fields(record, path, number))
    except UnicodeDecodeError as error:
        raise InputFileError(path, f"not UTF-8 text ({error.reason})", "re-encode the file as UTF-8") from None
    return known


def _processed_fields(record: dict, path: Path, number: int) -> dict[str, Any]:
    """Fields of one ``item_text.jsonl`` record: categories and brand_group where present."""
    fields: dict[str, Any] = {}
    try:
        categories = category_paths(record.get("categories"))
    except ValueError as error:
        raise InputFileError(path, str(error), MALFORMED_FIX, number) from None
    if categories:
        fields["categories"] = categories
    brand_group = record.get("brand_group")
    if brand_group is not None:
        if isinstance(brand_group, bool) or not isinstance(brand_group, int):
            raise InputFileError(path, f"brand_group {brand_group!r} is not an integer or null", MALFORMED_FIX, number)
        fields["brand_group"] = brand_group
    return fields


def load_amazon2014_dumps(reviews: Path, meta: Path, min_count: int = DEFAULT_MIN_COUNT) -> RawData:
    """Load ``reviews_<Category>_5.json.gz`` and ``meta_<Category>.json.gz`` with an iterative k-core filter."""
    reviews, meta = Path(reviews), Path(meta)
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise UnisrError(f"min_count must be a positive integer, got {min_count!r}")
    require_file(reviews, "review dump", "pass reviews_<Category>_5.json.gz (one JSON review per line)")
    require_file(meta, "metadata dump", "pass meta_<Category>.json.gz (one item dict per line)")
    users, items, times = _read_reviews(reviews)
    keep = np.flatnonzero(k_core(_codes(users), _codes(items), min_count))
    if not keep.size:
        raise InputFileError(
            reviews, f"no interactions survive the {min_count}-core filter", "lower min_count or pass the full review dump"
        )
    sequences = group_sequences([users[row] for row in keep], [items[row] for row in keep], [times[row] for row in keep])
    known = _read_meta(meta)
    files = {"reviews": reviews, "meta": meta}
    return RawData(build_catalog(sequences, known), sequences, source_record(DUMPS_LOADER, files, min_count=min_count))


def _read_reviews(path: Path) -> tuple[list[str], list[str], list[int]]:
    """Parse reviewerID, asin and unixReviewTime of every review line, in file order."""
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        record = parse_record(line, path, number)
        users.append(require_id(record.get("reviewerID"), "reviewerID", path, number))
        items.append(require_id(record.get("asin"), "asin", path, number))
        if "unixReviewTime" not in record:
            raise InputFileError(path, "missing unixReviewTime", MALFORMED_FIX, number)
        times.append(parse_timestamp(record["unixReviewTime"], path, number))
    return users, items, times


def _codes(values: list[str]) -> np.ndarray:
    """Integer codes of string ids, numbered by first appearance."""
    index: dict[str, int] = {}
    return np.fromiter((index.setdefault(value, len(index)) for value in values), dtype=np.int64, count=len(values))


def k_core(users: np.ndarray, items: np.ndarray, min_count: int) -> np.ndarray:
    """Mask of interactions kept once every user and item has ``min_count`` of them, repeated until stable."""
    keep = np.ones(len(users), dtype=bool)
    user_slots, item_slots = int(users.max(initial=-1)) + 1, int(items.max(initial=-1)) + 1
    while True:
        user_counts = np.bincount(users[keep], minlength=user_slots)
        item_counts = np.bincount(items[keep], minlength=item_slots)
        updated = keep & (user_counts[users] >= min_count) & (item_counts[items] >= min_count)
        if np.array_equal(updated, keep):
            return keep
        keep = updated


def _read_meta(path: Path) -> dict[str, Item]:
    """Parse every metadata line (JSON, else a Python literal) into an Item keyed by asin."""
    known: dict[str, Item] = {}
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        record = parse_record(line, path, number, python_literal=True)
        asin = require_id(record.get("asin"), "asin", path, number)
        if asin in known:
            raise InputFileError(path, f"duplicate item {asin!r}", "keep one line per item", number)
        known[asin] = Item(asin, _unescaped(record.get("title")), _meta_fields(record, path, number))
    return known


def _unescaped(value: Any) -> str:
    """A dump text field with HTML entities (``&amp;``) decoded, as in the processed files."""
    return html.unescape(text_value(value))


def _meta_fields(record: dict, path: Path, number: int) -> dict[str, Any]:
    """Fields of one metadata record: brand, categories, description and price where non-empty."""
    fields: dict[str, Any] = {}
    for key in ("brand", "description"):
        if value := _unescaped(record.get(key)):
            fields[key] = value
    try:
        categories = [[html.unescape(name) for name in category] for category in category_paths(record.get("categories"))]
    except ValueError as error:
        raise InputFileError(path, str(error), MALFORMED_FIX, number) from None
    if categories:
        fields["categories"] = categories
    if price := text_value(record.get("price")):
        fields["price"] = price
    return fields
