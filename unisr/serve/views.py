"""What the read-only endpoints show: an item with its prefix neighbours, a user's history, examples, the comparison."""

from __future__ import annotations

import numpy as np

from unisr.data.dataset import PreparedDataset
from unisr.decoder.retriever import GenerativeRetriever
from unisr.serve.models import CompareRow, Comparison, ExampleQuery, Examples, HistoryEntry, ItemRef, ItemView, Neighbour, UserView

DEFAULT_NEIGHBOURS = 12  # prefix neighbours shown with an item
MAX_NEIGHBOURS = 100
EXAMPLE_QUERIES = 6  # test queries offered by the page
EXAMPLE_USERS = 50  # users offered by the page's picker
COMPARE_TASKS = ("rec", "search")
COMPARE_METRICS = ("recall", "ndcg")


class Catalogue:
    """Titles and semantic IDs of items, and the neighbours of an item by shared leading codes."""

    def __init__(self, retriever: GenerativeRetriever):
        table = retriever.tokenizer.table
        self.dataset: PreparedDataset = retriever.dataset
        self.item_ids = list(table.item_ids)
        self.codes = np.asarray(table.semantic_ids)
        self.row = {item: row for row, item in enumerate(self.item_ids)}

    def semantic_id(self, item_id: str) -> list[int] | None:
        row = self.row.get(item_id)
        return None if row is None else self.codes[row].tolist()

    def ref(self, item_id: str) -> ItemRef:
        return ItemRef(item_id=item_id, title=self.dataset.catalog[item_id].title, semantic_id=self.semantic_id(item_id))

    def neighbours(self, item_id: str, limit: int) -> list[Neighbour]:
        """Items sharing at least the first code with ``item_id``, the longest shared prefix first (ties in table order)."""
        row = self.row.get(item_id)
        if row is None:
            return []
        shared = np.cumprod(self.codes == self.codes[row], axis=1).sum(axis=1)
        shared[row] = 0
        candidates = np.flatnonzero(shared > 0)
        order = candidates[np.argsort(-shared[candidates], kind="stable")][:limit]
        return [
            Neighbour(**self.ref(self.item_ids[other]).model_dump(), shared_levels=int(shared[other]))
            for other in order.tolist()
            if self.item_ids[other] in self.dataset.catalog
        ]

    def item(self, item_id: str, limit: int) -> ItemView:
        item = self.dataset.catalog[item_id]
        return ItemView(**self.ref(item_id).model_dump(), text=item.text, fields=item.fields, neighbours=self.neighbours(item_id, limit))

    def user(self, user_id: str, history: list[str]) -> UserView:
        """The user's items in time order, labelled by the leave-one-out split (the last two are valid and test)."""
        held_out = ["valid", "test"][-len(history) :] if history else []
        labels = ["train"] * (len(history) - len(held_out)) + held_out
        entries = [
            HistoryEntry(**self.ref(item).model_dump(), position=position, split=label)
            for position, (item, label) in enumerate(zip(history, labels, strict=True))
        ]
        return UserView(user_id=user_id, history=entries)


def examples(dataset: PreparedDataset, queries: int = EXAMPLE_QUERIES, users: int = EXAMPLE_USERS) -> Examples:
    """Distinct test queries (with the user who asked) and the first users, for the page's suggestions."""
    seen: dict[str, str | None] = {}
    for query in dataset.queries_in("test"):
        if len(seen) >= queries:
            break
        seen.setdefault(query.text, query.user_id)
    return Examples(
        queries=[ExampleQuery(text=text, user=user) for text, user in seen.items()],
        users=[split.user_id for split in dataset.splits[:users]],
    )


def _codes_label(scheme: str, quantizer: str) -> str:
    return scheme if scheme == "random" else f"{scheme} ({quantizer})"


def comparison(results: dict, plot_url: str | None) -> Comparison:
    """The table of ``unisr compare``'s results.json: every cell (mean over seeds), then the baselines."""
    metric = str(results.get("metric", "ndcg@10"))
    cutoff = metric.split("@")[-1]
    names = [(task, f"{name}@{cutoff}") for task in COMPARE_TASKS for name in COMPARE_METRICS]
    columns = [f"{task} {name}" for task, name in names]
    rows = []
    for row in results.get("aggregate", []):
        tasks = row.get("tasks", {})
        values = {f"{task} {name}": tasks.get(task, {}).get("metrics", {}).get(name, {}).get("mean") for task, name in names}
        rows.append(
            CompareRow(
                codes=_codes_label(row.get("scheme", "?"), row.get("quantizer", "?")), decoder=row.get("decoder", "?"), metrics=values
            )
        )
    for name, baseline in results.get("baselines", {}).items():
        tasks = baseline.get("results", {})
        values = {f"{task} {metric_name}": tasks.get(task, {}).get("metrics", {}).get(metric_name) for task, metric_name in names}
        rows.append(CompareRow(codes=f"baseline: {name}", decoder="–", metrics=values))
    dataset = results.get("dataset", {})
    return Comparison(
        dataset=str(dataset.get("name", "")),
        split=str(results.get("split", "")),
        metric=metric,
        columns=columns,
        rows=rows,
        plot=plot_url,
        results=results,
    )
