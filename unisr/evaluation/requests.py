"""One data contract for both tasks: requests (history, query, user) → relevant items."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from unisr.data.dataset import PreparedDataset
from unisr.data.schema import TASKS, Query


class EvalRequest(NamedTuple):
    history: tuple[str, ...]  # items engaged with before the request (the input of recommendation; personalizes search)
    query: str | None  # query text (search) or None (recommendation)
    user: str | None  # the user, where known
    relevant: tuple[str, ...]  # relevant item ids


class TaskRequests(NamedTuple):
    task: str  # rec | search
    split: str  # valid | test
    requests: list[EvalRequest]


def rec_requests(dataset: PreparedDataset, split: str = "test") -> TaskRequests:
    """Leave-one-out: the training part (plus the validation item for test) → the held-out item."""
    requests = [
        EvalRequest(
            user.test_history if split == "test" else user.valid_history,
            None,
            user.user_id,
            (user.test if split == "test" else user.valid,),
        )
        for user in dataset.splits
    ]
    return TaskRequests("rec", split, requests)


def search_requests(dataset: PreparedDataset, split: str = "test", queries: Sequence[Query] | None = None) -> TaskRequests:
    """The split's queries (the dataset's, or ``queries`` such as a probe set); personalized ones carry the user's history
    before the searched engagement."""
    by_user = dataset.split_by_user
    requests = []
    for query in dataset.queries_in(split) if queries is None else [query for query in queries if query.split == split]:
        history: tuple[str, ...] = ()
        if query.user_id is not None and query.position is not None and query.user_id in by_user:
            split_ = by_user[query.user_id]
            history = (*split_.train, split_.valid, split_.test)[: query.position]
        requests.append(EvalRequest(history, query.text, query.user_id, query.items))
    return TaskRequests("search", split, requests)


def task_requests(dataset: PreparedDataset, task: str, split: str = "test", queries: Sequence[Query] | None = None) -> TaskRequests:
    """Requests of one task; ``queries`` replaces the dataset's search queries."""
    if task == "rec":
        return rec_requests(dataset, split)
    if task == "search":
        return search_requests(dataset, split, queries)
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")
