"""Probe query sets: a held-out generator (title word + leaf category) that no training protocol uses."""

from __future__ import annotations

import json

import pytest

from unisr import api
from unisr.cli import main as cli
from unisr.data.queries.probe import SOURCE, ProbeConfig, leaf_title_needs, probe_queries
from unisr.data.schema import Catalog, Item
from unisr.errors import UnisrError


def test_needs_name_every_item_with_that_leaf_and_title_word(tiny_catalog):
    needs = leaf_title_needs(tiny_catalog, min_word_length=3)
    assert needs["red nail polish"] == ("a",)
    assert needs["gloss nail polish"] == ("a",)
    assert needs["hydrating creams moisturizers"] == ("c",)
    assert "nail nail polish" not in needs and "polish nail polish" not in needs  # a word of the leaf is not its own modifier
    assert "50mm digital camera lenses" not in needs  # only alphabetic title words
    assert not any(text.endswith(" shampoos") for text in needs)  # "Shampoo" is the title's only word and part of the leaf
    shared = Catalog([*tiny_catalog, Item("f", "Red Polish Set", {"categories": [["Beauty", "Makeup", "Nails", "Nail Polish"]]})])
    assert leaf_title_needs(shared, 3)["red nail polish"] == ("a", "f")


def test_probe_queries_avoid_training_texts_and_large_needs(tiny_catalog):
    catalog = Catalog([*tiny_catalog, *(Item(f"x{i}", f"Red Polish {i}", {"categories": [["B", "Nail Polish"]]}) for i in range(3))])
    everything = probe_queries(catalog, [], ProbeConfig(n_valid=0, n_test=100))
    texts = {query.text for query in everything}
    assert "red nail polish" in texts and len(texts) == len(everything)
    assert all(query.source == SOURCE and query.user_id is None and query.split == "test" for query in everything)
    assert {query.text: query.items for query in everything}["red nail polish"] == ("a", "x0", "x1", "x2")

    fewer = probe_queries(catalog, ["red nail polish"], ProbeConfig(n_valid=0, n_test=100, max_relevant=3))
    assert "red nail polish" not in {query.text for query in fewer}  # a training text, and 4 relevant items > 3
    assert len(fewer) == len(everything) - 1


def test_probe_queries_split_and_seed(tiny_catalog):
    config = ProbeConfig(n_valid=2, n_test=4, seed=3)
    first, again = probe_queries(tiny_catalog, [], config), probe_queries(tiny_catalog, [], config)
    assert first == again
    assert [query.split for query in first] == ["valid"] * 2 + ["test"] * 4
    other = probe_queries(tiny_catalog, [], ProbeConfig(n_valid=2, n_test=4, seed=4))
    assert [query.text for query in other] != [query.text for query in first]
    available = len(leaf_title_needs(tiny_catalog, 3))
    small = probe_queries(tiny_catalog, [], ProbeConfig(n_valid=available, n_test=available))
    assert len(small) == available and sum(query.split == "valid" for query in small) == available // 2


@pytest.mark.parametrize("settings", [{"n_test": 0}, {"n_valid": -1}, {"max_relevant": 0}, {"min_word_length": 0}])
def test_probe_config_refuses_impossible_settings(settings):
    with pytest.raises(UnisrError, match="probe queries"):
        ProbeConfig(**settings)


def test_probe_queries_need_leaf_categories():
    with pytest.raises(UnisrError, match="no \\(title word, leaf category\\) pair"):
        probe_queries(Catalog([Item("a", "Lamp", {})]), [], ProbeConfig())
    lamp = Catalog([Item("a", "Desk Lamp", {"categories": [["Home", "Lighting"]]})])
    assert sorted(query.text for query in probe_queries(lamp, [], ProbeConfig())) == ["desk lighting", "lamp lighting"]
    with pytest.raises(UnisrError, match="not a training query"):
        probe_queries(lamp, ["desk lighting", "lamp lighting"], ProbeConfig())


def test_cli_writes_probe_queries_and_evaluates_on_them(tmp_path, capsys):
    dataset = api.prepare_dataset("synthetic", tmp_path / "d")
    out = tmp_path / "probe.jsonl"
    assert cli.main(["data", "probe-queries", str(dataset.root), "--out", str(out), "--n-valid", "20", "--n-test", "40"]) == 0
    assert "wrote 60 probe queries" in capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    training = {query.text for query in dataset.queries_in("train")}
    assert len(records) == 60 and not {record["text"] for record in records} & training

    results = api.evaluate_ranker(dataset.root, baseline="bm25", tasks=("search",), split="test", ks=(10,), queries=out)
    assert results["search"].requests == 40
    assert results["search"].metrics["recall@10"] > 0.5  # every query word is in each relevant item's text

    code = cli.main(["evaluate", str(dataset.root), "--baseline", "bm25", "--tasks", "search", "--queries", str(tmp_path / "none.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no such file" in err and "probe-queries" in err
    out.write_text(out.read_text().replace(records[0]["items"][0], "not-an-item", 1))
    code = cli.main(["evaluate", str(dataset.root), "--baseline", "bm25", "--tasks", "search", "--queries", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and f"{out}:1:" in err and "not-an-item" in err and "made for this dataset" in err
    code = cli.main(["data", "probe-queries", str(dataset.root), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "is a directory" in err and err.count("\n") == 1
