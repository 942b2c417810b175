"""Typed requests and answers of the HTTP API, with the limits a request must keep."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_K = 10
MAX_K = 100  # results per request (also bounded by the items with semantic IDs)
MAX_QUERY_CHARS = 500
MAX_ID_CHARS = 200  # a user or item id
MAX_HISTORY_ITEMS = 1_000  # item ids in a request's history (the model reads only the most recent ones)


class Strict(BaseModel):
    """Unknown fields are refused (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid")


def user_field():
    return Field(default=None, min_length=1, max_length=MAX_ID_CHARS, description="A user of the dataset.")


def history_field(description: str):
    return Field(default=None, max_length=MAX_HISTORY_ITEMS, description=f"Item ids, oldest first. {description}")


def k_field():
    return Field(default=DEFAULT_K, ge=1, description=f"Results to return (at most {MAX_K} and the items with semantic IDs).")


class SearchRequest(Strict):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="Query text.")
    k: int = k_field()
    user: str | None = user_field()
    history: list[str] | None = history_field("Personalizes the search (wins over the user's own history).")

    @field_validator("query")
    @classmethod
    def has_words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is blank: type some words to search for")
        return value


class RecommendRequest(Strict):
    user: str | None = user_field()
    history: list[str] | None = history_field("Pass a history or a user, not both.")
    k: int = k_field()
    exclude_history: bool = Field(default=True, description="Leave out items already in the history.")


class Result(BaseModel):
    rank: int
    item_id: str
    title: str
    score: float = Field(description="Log-probability of the semantic ID (plus the weighted content prior when guided).")
    semantic_id: list[int]


class Answer(BaseModel):
    results: list[Result]
    took_ms: float = Field(description="Time from arrival to answer.")
    batch_size: int = Field(description="Requests decoded together with this one (1 without batching).")


class DatasetInfo(BaseModel):
    name: str
    fingerprint: str


class Health(BaseModel):
    status: str
    run: str
    dataset: DatasetInfo
    items: int = Field(description="Items with semantic IDs (the ones that can be answered).")
    catalog_items: int
    users: int
    tasks: list[str]
    uptime_s: float
    batching: bool
    max_batch: int
    max_k: int
    compare: bool = Field(description="Whether /compare serves a comparison.")


class ItemRef(BaseModel):
    item_id: str
    title: str
    semantic_id: list[int] | None


class Neighbour(ItemRef):
    shared_levels: int = Field(description="Leading codes shared with the viewed item.")


class ItemView(ItemRef):
    text: str
    fields: dict[str, Any]
    neighbours: list[Neighbour] = Field(description="Items sharing the longest prefixes, longest first (bounded).")


class HistoryEntry(ItemRef):
    position: int
    split: str = Field(description="train, valid (second-last) or test (last) of the leave-one-out split.")


class UserView(BaseModel):
    user_id: str
    history: list[HistoryEntry]


class ExampleQuery(BaseModel):
    text: str
    user: str | None


class Examples(BaseModel):
    queries: list[ExampleQuery]
    users: list[str]


class CompareRow(BaseModel):
    codes: str
    decoder: str
    metrics: dict[str, float | None] = Field(description="'<task> <metric>' → mean over seeds (None where the task is not served).")


class Comparison(BaseModel):
    dataset: str
    split: str
    metric: str
    columns: list[str]
    rows: list[CompareRow]
    plot: str | None = Field(description="URL of the tradeoff plot, where the comparison has one.")
    results: dict[str, Any] = Field(description="The whole results.json.")


class ErrorBody(BaseModel):
    error: str = Field(description="One line: what is wrong and how to fix it.")
    field: str | None = Field(description="The request field at fault (dotted), where one is.")
