"""Summary statistics of a prepared dataset (what `unisr data stats` prints)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from unisr.data.dataset import PreparedDataset

LENGTH_QUANTILES = (0.25, 0.5, 0.75, 0.9)


class DatasetStats(NamedTuple):
    name: str
    counts: dict[str, int]
    published_counts: dict[str, int]
    sequence_length: dict[str, float]
    queries_per_split: dict[str, int]
    personalized_queries: int
    items_without_text: int
    dropped_users: dict[str, int]
    cold_start_items: int

    @property
    def matches_published(self) -> bool | None:
        if not self.published_counts:
            return None
        return all(self.counts.get(key) == value for key, value in self.published_counts.items())


def dataset_stats(dataset: PreparedDataset) -> DatasetStats:
    lengths = np.array([len(sequence.items) for sequence in dataset.sequences], dtype=float)
    distribution = {"min": float(lengths.min()), "mean": round(float(lengths.mean()), 2), "max": float(lengths.max())}
    distribution.update({f"p{int(q * 100)}": float(np.quantile(lengths, q)) for q in LENGTH_QUANTILES})
    return DatasetStats(
        name=dataset.name,
        counts=dataset.counts(),
        published_counts=dict(dataset.manifest.get("published_counts") or {}),
        sequence_length=distribution,
        queries_per_split=dataset.query_counts(),
        personalized_queries=sum(query.user_id is not None for query in dataset.queries),
        items_without_text=sum(not item.text.strip() for item in dataset.catalog),
        dropped_users=dict(dataset.manifest.get("dropped_users") or {}),
        cold_start_items=len(dataset.cold_start_items),
    )


def format_stats(stats: DatasetStats) -> str:
    """Human-readable table of the stats."""
    rows = [f"dataset            {stats.name}"]
    for key, value in stats.counts.items():
        published = stats.published_counts.get(key)
        check = "" if published is None else f"  (published: {published:,}, {'match' if published == value else 'DIFFERS'})"
        rows.append(f"{key:<18} {value:,}{check}")
    length = stats.sequence_length
    rows.append("sequence length    " + "  ".join(f"{key} {value:g}" for key, value in length.items()))
    rows.append(
        "queries            "
        + "  ".join(f"{split} {count:,}" for split, count in stats.queries_per_split.items())
        + f"  (personalized {stats.personalized_queries:,})"
    )
    rows.append(f"items without text {stats.items_without_text:,}")
    rows.append("dropped users      " + "  ".join(f"{reason} {count:,}" for reason, count in stats.dropped_users.items()))
    rows.append(f"cold-start items   {stats.cold_start_items:,}")
    return "\n".join(rows)
