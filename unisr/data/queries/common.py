"""Helpers shared by the query protocols."""

from __future__ import annotations

from collections.abc import Iterable

from unisr.data.schema import Query


def leave_one_out_split(position: int, length: int) -> str:
    """Split of the engagement at ``position`` in a sequence of ``length``: last → test, second-last → valid."""
    if position == length - 1:
        return "test"
    if position == length - 2:
        return "valid"
    return "train"


def without_cold_items(queries: Iterable[Query], cold_items: set[str]) -> list[Query]:
    """Drop cold-start items from the relevant sets of training and validation queries (empty ones go)."""
    kept = []
    for query in queries:
        if query.split == "test" or not cold_items:
            kept.append(query)
            continue
        relevant = tuple(item for item in query.items if item not in cold_items)
        if relevant:
            kept.append(query if len(relevant) == len(query.items) else _replace_items(query, relevant))
    return kept


def _replace_items(query: Query, items: tuple[str, ...]) -> Query:
    return Query(query.query_id, query.text, items, query.split, query.source, query.user_id, query.position)
