from __future__ import annotations

import json

import pytest

from unisr.data.queries import (
    ItemQueryConfig,
    category_path_queries,
    item_category_queries,
    item_specific_queries,
    leave_one_out_split,
    log_queries,
    read_query_log,
    without_cold_items,
)
from unisr.data.queries.category_path import path_query
from unisr.data.schema import Query, QueryLogEvent
from unisr.errors import InputFileError, UnisrError


def test_path_query_follows_the_published_example():
    assert path_query(["Camera, Photo", "Digital Camera Lenses"]) == "photo digital camera lens"
    assert path_query(["Cell Phones & Accessories", "Cases"]) == "cell phone accessory case"
    assert path_query(["Electronics"]) == ""  # one-level hierarchies are ignored


def test_item_category_queries_skip_items_without_paths(tiny_catalog):
    queries = item_category_queries(tiny_catalog)
    assert queries["a"] == ["beauty makeup nail polish"]
    assert queries["d"] == ["photo digital camera lens"]  # the one-level path adds nothing
    assert set(queries) == {"a", "b", "c", "d", "e"}


def test_category_path_queries_follow_leave_one_out(tiny_catalog, tiny_sequences):
    queries = category_path_queries(tiny_catalog, tiny_sequences, seed=0)
    assert len(queries) == sum(len(s.items) for s in tiny_sequences)
    for query in queries:
        sequence = next(s for s in tiny_sequences if s.user_id == query.user_id)
        assert sequence.items[query.position] == query.items[0]
        assert query.split == leave_one_out_split(query.position, len(sequence.items))
    assert [q.split for q in queries if q.user_id == "u1"] == ["train", "train", "valid", "test"]
    assert queries == category_path_queries(tiny_catalog, tiny_sequences, seed=0)


def test_item_specific_queries_cover_every_item_and_never_repeat_training_text(tiny_catalog):
    config = ItemQueryConfig(n_train=3, n_valid=1, n_test=2, seed=3)
    queries = item_specific_queries(tiny_catalog, config)
    train_texts = {q.text for q in queries if q.split == "train"}
    held_out = [q for q in queries if q.split != "train"]
    assert {q.items[0] for q in queries if q.split == "test"} == set(tiny_catalog.ids)
    assert all(q.text not in train_texts for q in held_out)
    for query in queries:  # every query word comes from the item's own text
        item = tiny_catalog[query.items[0]]
        text = (item.title + " " + json.dumps(item.fields)).lower()
        assert all(word in text for word in query.text.split())
    assert queries == item_specific_queries(tiny_catalog, config)
    assert queries != item_specific_queries(tiny_catalog, ItemQueryConfig(n_train=3, n_valid=1, n_test=2, seed=4))


def test_log_queries_personalized_and_anonymous(tiny_catalog, tiny_sequences):
    events = [
        QueryLogEvent("red polish", "a", "u1", 9),  # before u1's first engagement with a → position 0
        QueryLogEvent("camera lens", "d", "u1", None),  # u1's last item → test
        QueryLogEvent("cream", "c", None, None),
        QueryLogEvent("cream", "e", None, None),
        QueryLogEvent("unknown", "zz", "u1", None),
        QueryLogEvent("stranger", "a", "nobody", None),
        QueryLogEvent("not engaged", "e", "u1", None),
    ]
    queries, counts = log_queries(events, tiny_catalog, tiny_sequences, seed=0)
    personalized = [q for q in queries if q.user_id]
    assert [(q.position, q.split) for q in personalized] == [(0, "train"), (3, "test")]
    anonymous = [q for q in queries if q.user_id is None]
    assert len(anonymous) == 1 and anonymous[0].items == ("c", "e")
    assert counts == {
        "personalized_events": 2,
        "anonymous_events": 2,
        "skipped_unknown_item": 1,
        "skipped_unknown_user": 1,
        "skipped_item_not_in_user_sequence": 1,
    }


def test_read_query_log_errors_name_the_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"query": "red polish", "item_id": "a", "user_id": "u1", "timestamp": 3}\n{"query": "", "item_id": "b"}\n')
    with pytest.raises(InputFileError, match=r"log.jsonl:2: missing or empty 'query'"):
        read_query_log(path)
    path.write_text('{"query": "x", "item_id": "a"}\nnot json\n')
    with pytest.raises(InputFileError, match=r"log.jsonl:2: not valid JSON"):
        read_query_log(path)
    path.write_text('{"query": "  red   polish ", "item_id": "a", "user_id": "u1", "timestamp": 3}\n')
    assert read_query_log(path) == [QueryLogEvent("red polish", "a", "u1", 3)]
    with pytest.raises(InputFileError, match="not found"):
        read_query_log(tmp_path / "missing.jsonl")


def test_without_cold_items_keeps_test_queries():
    queries = [
        Query("1", "x", ("a", "cold"), "train", "log"),
        Query("2", "y", ("cold",), "valid", "log"),
        Query("3", "z", ("cold",), "test", "log"),
    ]
    kept = without_cold_items(queries, {"cold"})
    assert [(q.query_id, q.items) for q in kept] == [("1", ("a",)), ("3", ("cold",))]


def test_mixed_training_queries_leave_the_other_queries_unchanged(tiny_catalog):
    base = item_specific_queries(tiny_catalog, ItemQueryConfig(n_train=2, n_train_mixed=0, n_valid=1, n_test=2, seed=5))
    mixed = item_specific_queries(tiny_catalog, ItemQueryConfig(n_train=2, n_train_mixed=3, n_valid=1, n_test=2, seed=5))

    def pairs(queries, split):
        return [(q.text, q.items) for q in queries if q.split == split]

    assert pairs(mixed, "test") == pairs(base, "test") and pairs(mixed, "valid") == pairs(base, "valid")
    base_train = pairs(base, "train")
    extra = [pair for pair in pairs(mixed, "train") if pair not in base_train]
    assert set(base_train) <= set(pairs(mixed, "train")) and extra
    held_out_texts = {q.text for q in mixed if q.split != "train"}
    assert not any(text in held_out_texts for text, _ in extra)
    with_other_words = 0
    for text, (item_id,) in extra:  # every word is the item's own; most mix in words from outside the title
        item = tiny_catalog[item_id]
        assert all(word in (item.title + " " + json.dumps(item.fields)).lower() for word in text.split())
        with_other_words += any(word not in item.title.lower() for word in text.split())
    assert with_other_words > 0


@pytest.mark.parametrize(
    "settings, named",
    [({"n_train_mixed": -1}, "n_train_mixed"), ({"n_train": -2}, "n_train"), ({"n_test": 0}, "n_test"), ({"min_words": 5}, "min_words")],
)
def test_item_query_config_refuses_impossible_counts(settings, named):
    with pytest.raises(UnisrError, match=named):
        ItemQueryConfig(**settings)
