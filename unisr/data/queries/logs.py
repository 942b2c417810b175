"""Real query logs.

Format: JSONL, one search event per line::

    {"query": "red nail polish", "item_id": "B004756YJA", "user_id": "A1YJ...", "timestamp": 1389052800}

``query`` and ``item_id`` are required; ``user_id`` and ``timestamp`` (seconds) are optional.
An event with a user whose sequence holds the item is personalized: its position is that
engagement (the first one at or after the timestamp, else the last one) and its split follows
the user's leave-one-out split. Events without a user are grouped by query text into one query
whose relevant items are all items engaged with after it; such a query's split is drawn from
its text with a seed (80/10/10). Events naming unknown items or users are skipped and counted.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from unisr.data.queries.common import leave_one_out_split
from unisr.data.schema import Catalog, Query, QueryLogEvent, UserSequence
from unisr.errors import InputFileError
from unisr.io import read_jsonl, require_file

SOURCE = "log"
HELD_OUT_SHARE = (0.8, 0.9)  # text hash below .8 → train, below .9 → valid, else test


def read_query_log(path: Path) -> list[QueryLogEvent]:
    """Parse a query log; a line without a query text or an item id is an error naming that line."""
    require_file(Path(path), "query log", "pass the path of a JSONL query log")
    events = []
    for line, record in read_jsonl(Path(path)):
        text, item = record.get("query"), record.get("item_id")
        if not isinstance(text, str) or not text.strip():
            raise InputFileError(path, "missing or empty 'query'", "every line needs a non-empty query text", line)
        if item is None or str(item) == "":
            raise InputFileError(path, "missing 'item_id'", "every line needs the id of the item engaged with", line)
        timestamp = record.get("timestamp")
        if timestamp is not None and not isinstance(timestamp, (int, float)):
            raise InputFileError(path, f"timestamp {timestamp!r} is not a number", "use seconds since the epoch", line)
        user = record.get("user_id")
        events.append(
            QueryLogEvent(
                " ".join(text.split()),
                str(item),
                str(user) if user is not None else None,
                int(timestamp) if timestamp is not None else None,
            )
        )
    return events


def _position(sequence: UserSequence, item_id: str, timestamp: int | None) -> int | None:
    positions = [p for p, item in enumerate(sequence.items) if item == item_id]
    if not positions:
        return None
    if timestamp is not None and sequence.timestamps is not None:
        later = [p for p in positions if sequence.timestamps[p] >= timestamp]
        if later:
            return later[0]
    return positions[-1]


def _text_split(text: str, seed: int) -> str:
    share = int(hashlib.sha1(f"{seed}:{text}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "train" if share < HELD_OUT_SHARE[0] else "valid" if share < HELD_OUT_SHARE[1] else "test"


def log_queries(
    events: Sequence[QueryLogEvent], catalog: Catalog, sequences: Sequence[UserSequence], seed: int
) -> tuple[list[Query], dict[str, int]]:
    """Queries from log events, and counts of what was kept and skipped."""
    by_user = {sequence.user_id: sequence for sequence in sequences}
    counts: Counter[str] = Counter()
    queries: list[Query] = []
    anonymous: dict[str, list[str]] = {}
    for event in events:
        if event.item_id not in catalog:
            counts["skipped_unknown_item"] += 1
            continue
        if event.user_id is None:
            relevant = anonymous.setdefault(event.text.lower(), [])
            if event.item_id not in relevant:
                relevant.append(event.item_id)
            counts["anonymous_events"] += 1
            continue
        sequence = by_user.get(event.user_id)
        if sequence is None:
            counts["skipped_unknown_user"] += 1
            continue
        position = _position(sequence, event.item_id, event.timestamp)
        if position is None:
            counts["skipped_item_not_in_user_sequence"] += 1
            continue
        split = leave_one_out_split(position, len(sequence.items))
        queries.append(Query(f"lq{len(queries)}", event.text, (event.item_id,), split, SOURCE, event.user_id, position))
        counts["personalized_events"] += 1
    for text, items in anonymous.items():
        queries.append(Query(f"lq{len(queries)}", text, tuple(items), _text_split(text, seed), SOURCE))
    return queries, dict(counts)
