"""The synthetic marketplace: determinism, sequence invariants, category structure, query log."""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import re
import time
from collections import Counter

import numpy as np
import pytest

from unisr.data.loaders.synthetic import SyntheticConfig, generate_marketplace
from unisr.data.loaders.synthetic_catalog import CATALOG_FILE, read_catalog, synthetic_catalog
from unisr.data.schema import Item, QueryLogEvent, RawData, UserSequence
from unisr.errors import InputFileError, UnisrError

SMALL_CONFIGS = [
    SyntheticConfig(seed=3, n_users=40, n_items=60),
    SyntheticConfig(seed=4, n_users=10, n_items=2, n_top_categories=1, n_subcategories=1, n_leaf_categories=1, n_brands=1),
    SyntheticConfig(seed=5, n_users=30, n_items=500, n_top_categories=6, n_brands=48, min_seq_len=3, max_seq_len=8),
    SyntheticConfig(seed=6, n_users=25, n_items=20, p_same_leaf=1.0, p_sibling_leaf=0.0, p_jump=0.0, search_share=1.0),
]


@pytest.fixture(scope="module")
def data() -> RawData:
    return generate_marketplace()


def _pairs(values):
    """Consecutive pairs (a, b) of a sequence."""
    return zip(values[:-1], values[1:], strict=True)


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _leaf(item: Item) -> tuple[str, ...]:
    return tuple(item.fields["categories"][0])


def _check_invariants(raw: RawData, config: SyntheticConfig) -> None:
    ids = [item.item_id for item in raw.items]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"SYN\d{6}", item_id) for item_id in ids)
    first_seen: dict[str, None] = {}
    for sequence in raw.sequences:
        assert isinstance(sequence, UserSequence)
        assert config.min_seq_len <= len(sequence.items) <= config.max_seq_len
        assert all(a != b for a, b in _pairs(sequence.items)), "immediate repeat"
        assert sequence.timestamps is not None and len(sequence.timestamps) == len(sequence.items)
        assert all(isinstance(t, int) for t in sequence.timestamps)
        assert all(a < b for a, b in _pairs(sequence.timestamps))
        for item_id in sequence.items:
            first_seen.setdefault(item_id, None)
    assert ids == list(first_seen), "catalog must be exactly the used items, in order of first appearance"
    assert [s.user_id for s in raw.sequences] == [f"U{u:05d}" for u in range(config.n_users)]


def test_same_seed_same_data_other_seed_different(data: RawData) -> None:
    again = generate_marketplace(SyntheticConfig())
    assert again.items == data.items
    assert again.sequences == data.sequences
    assert again.query_log == data.query_log
    assert again.source == data.source
    other = generate_marketplace(SyntheticConfig(seed=1))
    assert other.items != data.items
    assert other.sequences != data.sequences
    assert other.query_log != data.query_log


def test_default_config_sizes_and_speed(data: RawData) -> None:
    start = time.perf_counter()
    generate_marketplace()
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"default config took {elapsed:.2f}s"
    assert len(data.sequences) == 600
    assert len(data.items) == 400  # every generated item is reached (or swapped in) by some user
    assert data.query_log


def test_sequences_and_catalog_invariants(data: RawData) -> None:
    _check_invariants(data, SyntheticConfig())
    assert all(len(s.items) >= 5 for s in data.sequences)


@pytest.mark.parametrize("config", SMALL_CONFIGS, ids=lambda c: f"seed{c.seed}")
def test_invariants_hold_for_other_configs(config: SyntheticConfig) -> None:
    raw = generate_marketplace(config)
    _check_invariants(raw, config)
    assert len(raw.items) <= config.n_items
    catalog = {item.item_id for item in raw.items}
    assert all(event.item_id in catalog for event in raw.query_log or [])


def test_sequence_lengths_are_skewed(data: RawData) -> None:
    lengths = np.array([len(s.items) for s in data.sequences])
    assert lengths.min() == 5
    assert np.median(lengths) < 12 < lengths.max()  # many short users, a tail of long ones


def test_consecutive_items_share_categories_far_more_than_random_pairs(data: RawData) -> None:
    leaf = {item.item_id: _leaf(item) for item in data.items}
    pairs = [(a, b) for s in data.sequences for a, b in _pairs(s.items)]
    same_leaf = np.mean([leaf[a] == leaf[b] for a, b in pairs])
    same_top = np.mean([leaf[a][0] == leaf[b][0] for a, b in pairs])
    flat = [i for s in data.sequences for i in s.items]
    rng = np.random.default_rng(0)
    left, right = rng.integers(len(flat), size=(2, 20_000))
    random_leaf = np.mean([leaf[flat[a]] == leaf[flat[b]] for a, b in zip(left, right, strict=True)])
    random_top = np.mean([leaf[flat[a]][0] == leaf[flat[b]][0] for a, b in zip(left, right, strict=True)])
    assert same_leaf > 0.4 and same_leaf > 5 * random_leaf, (same_leaf, random_leaf)
    assert same_top > 0.8 and same_top > random_top + 0.4, (same_top, random_top)


def test_popularity_is_skewed(data: RawData) -> None:
    counts = np.array(sorted(Counter(i for s in data.sequences for i in s.items).values(), reverse=True))
    top_decile_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_decile_share > 0.2  # uniform popularity would give 0.1
    assert counts.min() >= 1


def test_titles_share_vocabulary_within_a_leaf(data: RawData) -> None:
    by_leaf: dict[tuple[str, ...], list[set[str]]] = {}
    for item in data.items:
        by_leaf.setdefault(_leaf(item), []).append(_tokens(item.title) - _tokens(item.fields["brand"]))

    def jaccard(a: set[str], b: set[str]) -> float:
        return len(a & b) / len(a | b)

    within = [jaccard(a, b) for titles in by_leaf.values() for a, b in _pairs(titles)]
    groups = list(by_leaf.values())
    across = [jaccard(a[0], b[0]) for a, b in _pairs(groups)]
    assert np.mean(within) > np.mean(across) + 0.2


def test_item_fields_have_documented_types(data: RawData) -> None:
    for item in data.items:
        assert isinstance(item, Item)
        assert set(item.fields) == {"brand", "categories", "description", "price"}
        brand, categories = item.fields["brand"], item.fields["categories"]
        assert isinstance(brand, str) and item.title.startswith(brand + " ")
        assert isinstance(categories, list) and len(categories) == 1
        assert isinstance(categories[0], list) and len(categories[0]) == 3 and all(isinstance(c, str) and c for c in categories[0])
        description = item.fields["description"]
        assert isinstance(description, str) and 1 <= description.count(". ") + 1 <= 2 and description.endswith(".")
        assert isinstance(item.fields["price"], str) and re.fullmatch(r"\d+\.\d{2}", item.fields["price"])
        assert float(item.fields["price"]) > 0
        assert len(item.title.split()) >= 3
    tops_of_brand: dict[str, set[str]] = {}
    for item in data.items:
        tops_of_brand.setdefault(item.fields["brand"], set()).add(item.fields["categories"][0][0])
    assert max(len(tops) for tops in tops_of_brand.values()) <= 2  # brands specialise
    assert len(tops_of_brand) >= 20


def test_source_records_loader_and_config(data: RawData) -> None:
    assert data.source == {"loader": "synthetic", "config": dataclasses.asdict(SyntheticConfig())}
    json.dumps(data.source)


def test_query_events_precede_an_engagement_of_that_user(data: RawData) -> None:
    sequences = {s.user_id: s for s in data.sequences}
    assert data.query_log is not None
    for event in data.query_log:
        assert isinstance(event, QueryLogEvent)
        sequence = sequences[event.user_id]
        assert event.item_id in sequence.items
        stamps = sequence.timestamps
        matches = [
            p
            for p, item in enumerate(sequence.items)
            if item == event.item_id and 0 < stamps[p] - event.timestamp <= 120 and (p == 0 or stamps[p - 1] < event.timestamp)
        ]
        assert matches, event
    engagements = sum(len(s.items) for s in data.sequences)
    assert 0.25 < len(data.query_log) / engagements < 0.35  # search_share = 0.3
    assert [e.timestamp for e in data.query_log] == sorted(e.timestamp for e in data.query_log)


def test_query_text_is_realistic_and_matches_its_item(data: RawData) -> None:
    assert data.query_log is not None
    items = {item.item_id: item for item in data.items}
    ids = list(items)
    rng = np.random.default_rng(0)

    def overlap(text: str, item: Item) -> float:
        words = _tokens(text)
        vocabulary = _tokens(item.title) | _tokens(" ".join(item.fields["categories"][0]))
        return len(words & vocabulary) / len(words)

    own, other = [], []
    for event in data.query_log:
        assert event.text == event.text.lower() and event.text == event.text.strip()
        assert 2 <= len(event.text.split()) <= 4, event.text
        own.append(overlap(event.text, items[event.item_id]))
        other.append(overlap(event.text, items[ids[int(rng.integers(len(ids)))]]))
    assert np.mean(own) > 0.6 and np.mean(own) > np.mean(other) + 0.4, (np.mean(own), np.mean(other))
    assert np.mean(own) < 0.98  # synonyms and filler words: queries are not copies of titles


def test_different_users_word_the_same_item_differently(data: RawData) -> None:
    assert data.query_log is not None
    texts: dict[str, dict[str, str]] = {}
    for event in data.query_log:
        texts.setdefault(event.item_id, {})[event.user_id] = event.text
    shared = [by_user for by_user in texts.values() if len(by_user) >= 3]
    assert shared
    varied = np.mean([len(set(by_user.values())) >= 2 for by_user in shared])
    assert varied > 0.9
    assert len({e.text for e in data.query_log}) > 0.6 * len(data.query_log)


def test_search_share_zero_gives_empty_log() -> None:
    raw = generate_marketplace(SyntheticConfig(n_users=20, n_items=30, search_share=0.0))
    assert raw.query_log == []


@pytest.mark.parametrize(
    "options",
    [
        {"p_same_leaf": 0.9},
        {"n_top_categories": 99},
        {"n_brands": 0},
        {"min_seq_len": 8, "max_seq_len": 4},
        {"n_items": 1},
        {"search_share": 1.5},
    ],
)
def test_invalid_options_raise_a_user_error(options: dict) -> None:
    with pytest.raises(UnisrError, match="synthetic loader option"):
        generate_marketplace(SyntheticConfig(**options))


def test_the_shipped_catalog_is_read_from_package_data() -> None:
    catalog = synthetic_catalog()
    assert (catalog.max_top, catalog.max_sub, catalog.max_leaf, len(catalog.brands)) == (6, 3, 3, 48)
    frying_pans = catalog.categories[0].subcategories[0].leaves[0]
    assert (frying_pans.name, frying_pans.noun, frying_pans.price_range) == ("Frying Pans", "Frying Pan", (15.0, 95.0))


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (lambda data: data.pop("brands"), "the file must be an object with the keys categories, brands"),
        (
            lambda data: data["categories"][1]["subcategories"][2]["leaves"][0].update(synonyms=[]),
            r"categories\[1\]\.subcategories\[2\]\.leaves\[0\]\.synonyms must be a non-empty list",
        ),
        (
            lambda data: data["categories"][0]["subcategories"][0]["leaves"][1].update(price_range=[30, 10]),
            r"categories\[0\]\.subcategories\[0\]\.leaves\[1\]\.price_range must be \[lowest, highest\]",
        ),
        (lambda data: data["brands"].append(""), r"brands\[48\] must be a non-empty string"),
    ],
)
def test_a_malformed_catalog_is_a_one_line_error_naming_the_file(tmp_path, spoil, expected: str) -> None:
    data = json.loads(importlib.resources.files("unisr.data.loaders").joinpath(CATALOG_FILE).read_text(encoding="utf-8"))
    spoil(data)
    path = tmp_path / CATALOG_FILE
    path.write_text(json.dumps(data))
    with pytest.raises(InputFileError, match=rf"^{re.escape(str(path))}: {expected}") as error:
        read_catalog(path)
    assert "\n" not in str(error.value)
    path.write_text('{"categories": [')
    with pytest.raises(InputFileError, match=rf"^{re.escape(str(path))}:1: not valid JSON"):
        read_catalog(path)
