"""What `unisr codes inspect` shows: the health report, the largest collision groups, prefix neighbours."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from unisr.data.schema import Catalog
from unisr.tokenizer.artifact import SemanticTokenizer
from unisr.tokenizer.health import format_health, report_from_dict


class CodedItem(NamedTuple):
    item_id: str
    title: str
    semantic_id: tuple[int, ...]


class PrefixNeighbours(NamedTuple):
    item: CodedItem
    shared_levels: int  # length of the prefix the neighbours share with the item
    neighbours: list[CodedItem]


class CodesInspection(NamedTuple):
    health: dict
    largest_groups: list[list[CodedItem]]  # items sharing all residual codes (told apart by the collision token)
    neighbours: list[PrefixNeighbours]


def _coded(tokenizer: SemanticTokenizer, catalog: Catalog | None, row: int) -> CodedItem:
    item_id = tokenizer.table.item_ids[row]
    title = catalog[item_id].title if catalog is not None and item_id in catalog else ""
    return CodedItem(item_id, title, tuple(tokenizer.table.semantic_ids[row].tolist()))


def inspect_codes(
    tokenizer: SemanticTokenizer,
    health: dict,
    catalog: Catalog | None,
    groups: int = 3,
    examples: int = 3,
    per_example: int = 5,
    seed: int = 0,
) -> CodesInspection:
    """Largest collision groups and, for ``examples`` random items, the items that share their longest non-trivial prefix."""
    ids = tokenizer.table.semantic_ids
    residual = ids[:, :-1]
    _, inverse, counts = np.unique(residual, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    largest = np.argsort(-counts, kind="stable")[:groups]
    largest_groups = [
        [_coded(tokenizer, catalog, row) for row in np.flatnonzero(inverse == group)[:per_example]]
        for group in largest
        if counts[group] > 1
    ]
    rng = np.random.default_rng(seed)
    neighbours = []
    for row in rng.choice(len(ids), size=min(examples, len(ids)), replace=False).tolist():
        for depth in range(residual.shape[1], 0, -1):
            shares = np.flatnonzero((residual[:, :depth] == residual[row, :depth]).all(axis=1))
            shares = shares[shares != row]
            if len(shares):
                neighbours.append(
                    PrefixNeighbours(
                        _coded(tokenizer, catalog, row), depth, [_coded(tokenizer, catalog, other) for other in shares[:per_example]]
                    )
                )
                break
    return CodesInspection(health, largest_groups, neighbours)


def format_inspection(inspection: CodesInspection) -> str:
    rows = [format_health(report_from_dict(inspection.health)), "", "largest collision groups (same residual codes):"]
    for group in inspection.largest_groups:
        rows.append(f"  {'-'.join(map(str, group[0].semantic_id[:-1]))}-*")
        rows += [f"    {item.item_id:<14} {'-'.join(map(str, item.semantic_id))}  {item.title}" for item in group]
    rows.append("")
    rows.append("items and the items sharing their longest prefix:")
    for entry in inspection.neighbours:
        rows.append(
            f"  {entry.item.item_id:<14} {'-'.join(map(str, entry.item.semantic_id))}  {entry.item.title}"
            f"   (shared levels: {entry.shared_levels})"
        )
        rows += [f"      {item.item_id:<14} {'-'.join(map(str, item.semantic_id))}  {item.title}" for item in entry.neighbours]
    return "\n".join(rows)
