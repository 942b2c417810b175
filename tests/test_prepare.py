from __future__ import annotations

import json
import shutil
import sys

import pytest

from unisr import api
from unisr.data import PreparedDataset, dataset_stats, load_task, prepare
from unisr.data.dataset import FILES
from unisr.data.prepare import draw_cold_start_items, split_sequences
from unisr.data.schema import UserSequence
from unisr.errors import InputFileError, UnisrError


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> PreparedDataset:
    return api.prepare_dataset("synthetic", tmp_path_factory.mktemp("prep") / "synthetic")


@pytest.fixture(scope="module")
def synthetic_cold(tmp_path_factory) -> PreparedDataset:
    return api.prepare_dataset("synthetic", tmp_path_factory.mktemp("prep") / "cold", cold_start=True)


def _write_lcrec(folder, sequences, items):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "x.inter.json").write_text(json.dumps(sequences))
    (folder / "x.item.json").write_text(json.dumps(items))


def _task_yaml(path, **extra):
    lines = ["loader: lcrec", "files: {interactions: x.inter.json, items: x.item.json}", "text_fields: [title, categories]"]
    lines += [f"{key}: {value}" for key, value in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_leave_one_out_split_partitions_each_sequence(synthetic):
    by_user = {s.user_id: s for s in synthetic.sequences}
    assert len(synthetic.splits) == len(synthetic.sequences)
    for split in synthetic.splits:
        assert (*split.train, split.valid, split.test) == by_user[split.user_id].items
        assert split.test_history == (*split.train, split.valid)


def test_query_positions_point_at_their_engagement(synthetic):
    by_user = synthetic.split_by_user
    personalized = [q for q in synthetic.queries if q.user_id is not None]
    assert personalized and synthetic.query_counts()["test"] > 0
    for query in personalized:
        split = by_user[query.user_id]
        sequence = (*split.train, split.valid, split.test)
        assert sequence[query.position] == query.items[0]
        expected = "test" if query.position == len(sequence) - 1 else "valid" if query.position == len(sequence) - 2 else "train"
        assert query.split == expected


def test_manifest_records_source_counts_and_hashes(synthetic):
    manifest = synthetic.manifest
    assert manifest["counts"] == synthetic.counts()
    assert manifest["source"]["loader"] == "synthetic"
    assert set(manifest["files"]) == {"items.jsonl", "sequences.jsonl", "rec_split.jsonl", "queries.jsonl", "cold_start.json"}
    assert PreparedDataset.load(synthetic.root, verify=True).counts() == synthetic.counts()
    assert all(item.text for item in synthetic.catalog)


def test_lazy_load_reads_each_part_on_first_use(synthetic, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(synthetic.root, copy)
    lazy = PreparedDataset.load(copy, lazy=True)
    assert set(vars(lazy)) == {"root", "manifest", "catalog"}
    assert lazy.catalog.items == synthetic.catalog.items and lazy.fingerprint == synthetic.fingerprint
    assert lazy.split_by_user == synthetic.split_by_user and set(vars(lazy)) == {"root", "manifest", "catalog", "splits", "split_by_user"}
    (copy / FILES["queries"]).write_text("not json\n")  # a damaged part is refused when it is first read
    with pytest.raises(InputFileError, match="queries.jsonl:1: not valid JSON"):
        lazy.queries_in("test")
    for part in ("sequences", "cold_start_items"):
        assert getattr(lazy, part) == getattr(synthetic, part)
    assert not hasattr(lazy, "query_log")  # only the dataset's parts are read on demand


def test_preparation_is_deterministic(synthetic, tmp_path):
    again = api.prepare_dataset("synthetic", tmp_path / "again")
    assert again.manifest["files"] == synthetic.manifest["files"]
    assert again.fingerprint == synthetic.fingerprint


def test_cold_start_items_absent_from_all_training_data(synthetic_cold):
    cold = synthetic_cold.cold_start_items
    tests = {split.test for split in synthetic_cold.splits}
    assert cold and cold <= tests
    assert len(cold) == max(1, round(0.05 * len(tests)))
    for split in synthetic_cold.splits:
        assert not cold & set(split.train) and split.valid not in cold
    for query in synthetic_cold.queries:
        if query.split != "test":
            assert not cold & set(query.items)
    assert synthetic_cold.manifest["cold_start"]["items"] == len(cold)


def test_cold_start_draw_is_seeded():
    items = [f"i{n}" for n in range(100)]
    assert draw_cold_start_items(items, 0.05, 1) == draw_cold_start_items(items, 0.05, 1)
    assert draw_cold_start_items(items, 0.05, 1) != draw_cold_start_items(items, 0.05, 2)


def test_cold_start_removal_can_drop_users():
    sequences = [UserSequence("u", ("cold", "a", "b")), UserSequence("v", ("a", "b", "cold"))]
    splits, dropped = split_sequences(sequences, frozenset({"cold"}), 3)
    assert dropped == 1 and [s.user_id for s in splits] == ["v"]


def test_short_users_are_dropped_and_counted(tmp_path):
    _write_lcrec(
        tmp_path, {"0": [0, 1, 2], "1": [1, 2], "2": [2, 0, 1, 2]}, {str(i): {"title": f"Item {i}", "categories": "A,B"} for i in range(3)}
    )
    task = load_task(str(_task_yaml(tmp_path / "tiny.yaml")))
    dataset = prepare(task, tmp_path / "out", data_root=tmp_path)
    assert dataset.counts() == {"users": 2, "items": 3, "interactions": 7}
    assert dataset.manifest["dropped_users"]["too_short"] == 1
    assert dataset_stats(dataset).dropped_users["too_short"] == 1


def test_items_without_text_fail_unless_allowed(tmp_path):
    _write_lcrec(tmp_path, {"0": [0, 1, 2]}, {"0": {"title": "One"}, "1": {"title": ""}, "2": {"title": "Three"}})
    task = load_task(str(_task_yaml(tmp_path / "t.yaml")))
    with pytest.raises(UnisrError, match="item '1' has no text"):
        prepare(task, tmp_path / "out", data_root=tmp_path)
    assert not (tmp_path / "out").exists()
    allowed = load_task(str(_task_yaml(tmp_path / "t2.yaml", allow_items_without_text="true")))
    assert prepare(allowed, tmp_path / "out", data_root=tmp_path).manifest["items_without_text"] == 1


def test_output_directory_holding_another_dataset_is_refused(synthetic, tmp_path):
    with pytest.raises(UnisrError, match="already holds a prepared dataset"):
        api.prepare_dataset("synthetic", synthetic.root)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(UnisrError, match="not an empty directory"):
        api.prepare_dataset("synthetic", occupied)
    assert (occupied / "notes.txt").read_text() == "mine"


def test_failure_while_writing_leaves_no_directory(tmp_path, monkeypatch):
    module = sys.modules["unisr.data.prepare"]

    def broken(path, records):
        raise OSError("disk full")

    monkeypatch.setattr(module, "write_jsonl", broken)
    with pytest.raises(OSError):
        api.prepare_dataset("synthetic", tmp_path / "half")
    assert list(tmp_path.iterdir()) == []


def test_unknown_task_and_bad_task_settings(tmp_path):
    with pytest.raises(UnisrError, match="unknown task 'nope'.*synthetic"):
        load_task("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("loader: lcrec\nqueries: {protocol: telepathy}\n")
    with pytest.raises(UnisrError, match="unknown query protocol 'telepathy'"):
        load_task(str(bad))
    bad.write_text("loader: lcrec\nsplitt: 3\n")
    with pytest.raises(UnisrError, match=r"bad.yaml: unknown setting 'splitt'"):
        load_task(str(bad))
    bad.write_text("loader: lcrec\nfiles: {interactions: missing.json, items: missing.json}\n")
    with pytest.raises(UnisrError, match="missing.json: source file of task 'bad' not found"):
        prepare(load_task(str(bad)), tmp_path / "out", data_root=tmp_path)


@pytest.mark.parametrize(
    ("task", "users", "items", "interactions"),
    [("beauty", 22363, 12101, 198502), ("scientific", 8317, 4344, 58492), ("ml-100k", 943, 1682, 100000)],
)
def test_real_datasets_match_published_counts(shared_data, tmp_path, task, users, items, interactions):
    dataset = api.prepare_dataset(task, tmp_path / task, data_root=shared_data)
    stats = dataset_stats(dataset)
    assert stats.counts == {"users": users, "items": items, "interactions": interactions}
    assert stats.matches_published is True
    assert stats.queries_per_split["test"] > 0 and stats.queries_per_split["train"] > 0


@pytest.mark.parametrize("task", ["scientific-items", "beauty-items"])
def test_item_specific_queries_cover_every_item(shared_data, tmp_path, task):
    dataset = api.prepare_dataset(task, tmp_path / task, data_root=shared_data)
    test_items = {q.items[0] for q in dataset.queries_in("test")}
    assert test_items == set(dataset.catalog.ids)
    train = dataset.queries_in("train")
    train_texts = {q.text for q in train}
    assert not any(q.text in train_texts for q in dataset.queries_in("test"))
    assert len(train) >= 15.5 * len(dataset.catalog)  # 4 title queries and 12 mixed ones per item, a few items have fewer words
