"""Smoke tests of the benchmark scripts (scripts/bench_*.py) with the tiniest settings their options allow.

Each script runs as its own process (``python scripts/bench_X.py ...``, as BENCHMARKS.md documents it), on the
synthetic task (a copy of the session's prepared and embedded dataset, so nothing is embedded again) or on
random IDs, writing under tmp_path; the tests check the exit code and the report/outputs. The option lines of
the commands documented in BENCHMARKS.md are also parsed against each script's options (nothing runs there).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import click
import pytest
import typer

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
SCRIPT_NAMES = sorted(path.stem for path in SCRIPTS.glob("bench_*.py"))
# each has a smoke test below
TESTED = {"bench_baselines", "bench_catalog", "bench_codes", "bench_compare", "bench_decode", "bench_guidance", "bench_serve"}
TESTED |= {"bench_train"}
TIMEOUT_S = 300  # per script run; the smoke runs take seconds to tens of seconds


def run_script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python scripts/<name>.py args`` from ``cwd`` (outputs go to tmp_path), with its own embedding cache."""
    env = {**os.environ, "UNISR_CACHE_DIR": str(cwd / "embedding-cache"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["_TYPER_STANDARD_TRACEBACK"] = "1"  # plain tracebacks in the failure message, not typer's boxed ones
    completed = subprocess.run(
        [sys.executable, str(SCRIPTS / f"{name}.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert completed.returncode == 0, (
        f"{name} {' '.join(args)} exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr[-6000:]}"
    )
    return completed


def load_script(name: str) -> ModuleType:
    """Import scripts/<name>.py as a module (its typer app is not run)."""
    spec = importlib.util.spec_from_file_location(f"unisr_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_dataset(source: Path, target: Path) -> Path:
    """A copy of a prepared, embedded dataset (embeddings live inside it, so scripts find them and embed nothing)."""
    shutil.copytree(source, target)
    return target


def test_every_script_has_a_smoke_test():
    assert SCRIPT_NAMES, f"no bench_*.py under {SCRIPTS}"
    assert set(SCRIPT_NAMES) <= TESTED, f"add a smoke test for {sorted(set(SCRIPT_NAMES) - TESTED)} to tests/test_scripts.py"


def documented_commands() -> list[tuple[str, list[str]]]:
    """``(script, args)`` of every ``python scripts/bench_X.py ...`` in BENCHMARKS.md, README.md and the scripts' docstrings."""
    texts = [(ROOT / doc).read_text() for doc in ("BENCHMARKS.md", "README.md")]
    texts += [(SCRIPTS / f"{name}.py").read_text() for name in SCRIPT_NAMES]
    commands = []
    for text in texts:
        for match in re.finditer(r"python scripts/(bench_\w+)\.py([^\n#`|]*)", text):  # up to a comment, a code span's end or a table cell
            commands.append((match.group(1), shlex.split(match.group(2))))
    return commands


def test_documented_commands_parse():
    """Every documented command line is accepted by its script's options and names known tasks (parsing only: nothing is run)."""
    from unisr.data.tasks import load_task

    commands = documented_commands()
    assert {name for name, _ in commands} >= set(SCRIPT_NAMES)  # every script documents its usage
    for name in sorted({name for name, _ in commands}):
        command = typer.main.get_command(load_script(name).app)
        for script, args in commands:
            if script != name:
                continue
            try:
                command.make_context(name, list(args), resilient_parsing=False)
            except click.ClickException as error:
                pytest.fail(f"documented `python scripts/{name}.py {shlex.join(args)}` no longer parses: {error.format_message()}")
            for option, value in zip(args, args[1:], strict=False):
                if option == "--task":
                    load_task(value)


def test_bench_decode_rows_keeps_none_fields():
    """rows() slices every per-request tensor and leaves absent fields (EncoderInput.user) None."""
    import torch

    from unisr.decoder.model import EncoderInput

    bench_decode = load_script("bench_decode")
    batch = EncoderInput(torch.arange(5), torch.zeros(5, 3, 4, dtype=torch.long), torch.zeros(5, 8), torch.ones(5, dtype=torch.bool))
    part = bench_decode.rows(batch, 1, 3)
    assert isinstance(part, EncoderInput) and part.user is None
    assert part.task.tolist() == [1, 2] and part.history.shape == (2, 3, 4) and part.query.shape == (2, 8)
    with_user = bench_decode.rows(batch._replace(user=torch.arange(5) + 10), 2, 4)
    assert with_user.user.tolist() == [12, 13]


def check_decode_report(completed: subprocess.CompletedProcess, report_path: Path, items: int) -> dict:
    report = json.loads(report_path.read_text())
    assert report["items"] == items
    expected = [("unisr", 1), ("unisr", 4), ("hf-generate", 1), ("hf-generate", 2)]  # decoder, batch (TINY_DECODE)
    assert [(row["decoder"], row["batch"]) for row in report["decode"]] == expected
    for row in report["decode"]:
        assert row["requests_per_s"] > 0 and row["median_ms"] > 0
        assert row["invalid_ids"] == 0, f"{row['decoder']} returned IDs outside the table"  # both decoders are constrained
    assert set(report["speedup_unisr_over_hf"]) == {"1 vs 1", "4 vs 2"}
    check = report["reference_check"]["top_k"]  # the incremental decoder returns the full-recompute path's top-K lists
    assert check["identical"] == check["requests"] == 2 + 4 and report["decode"][0]["gflops_per_s"] > 0
    assert report["train_examples_per_s"] and all(rate > 0 for rate in report["train_examples_per_s"].values())
    assert "| decoder | batch | requests/s |" in completed.stdout and "| hf-generate | 2 |" in completed.stdout
    return report


TINY_DECODE = [
    "--config", "decoder-small", "--repeats", "2", "--batch-repeats", "1", "--batch", "4", "--hf-batch-requests", "2",
    "--train-steps", "1", "--train-batch", "4", "--threads", "1",
]  # fmt: skip


def test_bench_decode_random_ids(tmp_path):
    """Small decoder, 60 random IDs, 2 batch-1 calls and one batched call per decoder, one training step per history mode."""
    completed = run_script("bench_decode", "--items", "60", *TINY_DECODE, "--json", str(tmp_path / "out" / "decode.json"), cwd=tmp_path)
    report = check_decode_report(completed, tmp_path / "out" / "decode.json", 60)
    assert report["config"] == "decoder-small" and report["torch_threads"] == 1


def test_bench_catalog_synthetic_ids():
    """Unique IDs whose collision token stays below 256 (last codes redrawn), and the fit recovers known exponents."""
    import numpy as np

    bench_catalog = load_script("bench_catalog")
    ids, redrawn = bench_catalog.synthetic_ids(2000, (3.0, 3.0, 3.0), 1)  # most items on one code per level: overflows
    assert redrawn > 0 and ids.shape == (2000, 4) and int(ids[:, -1].max()) == 255
    assert len(np.unique(ids, axis=0)) == 2000
    assert np.array_equal(ids[:, -1], bench_catalog.collision_ordinals(ids[:, :-1]))
    stats = bench_catalog.table_stats(bench_catalog.synthetic_ids(3000, (0.5, 1.0, 1.5), 2)[0])
    fitted = bench_catalog.fit_exponents(stats.items, stats.first_perplexity, stats.collision_rate, stats.nodes[1], 2)
    assert np.allclose(fitted, (0.5, 1.0, 1.5), atol=0.05)


def test_bench_catalog(tmp_path):
    """Two tiny catalogs with the small decoder, 2 batch-1 calls and one batched call each: JSON and PNG."""
    report_path = tmp_path / "out" / "catalog.json"
    args = ["--sizes", "300,3000", "--config", "decoder-small", "--repeats", "2", "--batch", "4", "--batch-repeats", "1"]
    completed = run_script("bench_catalog", *args, "--threads", "1", "--json", str(report_path), cwd=tmp_path)
    report = json.loads(report_path.read_text())
    assert [row["items"] for row in report["sizes"]] == [300, 3000]
    assert report["calibration"]["exponents"] == list(load_script("bench_catalog").DEFAULT_EXPONENTS)
    for row in report["sizes"]:
        assert row["parameters"] == report["parameters"] and 0 < row["id_table_bytes"] < row["trie_bytes"]
        assert row["trie_build_s"] > 0 and row["rss_loaded_mb"] > 0 and row["table"]["max_collision_token"] < 256
        assert row["item_vector_bytes"] == row["items"] * 384 * 4  # the item prior's vectors: MiniLM width, float32
        for name in ("model", "beam_only", "item_prior"):
            assert [cell["batch"] for cell in row["decode"][name]] == [1, 4]
            assert all(cell["invalid_ids"] == 0 and cell["median_ms"] > 0 for cell in row["decode"][name])
    assert report_path.with_suffix(".png").stat().st_size > 0
    assert "| items | prefixes (1/2/3 codes) |" in completed.stdout and "| 3,000 |" in completed.stdout
    assert "| item vectors MB | item prior, batch 1 ms |" in completed.stdout


@pytest.fixture(scope="module")
def codes_run(embedded_synthetic, tmp_path_factory):
    """bench_codes on the synthetic task: small tokenizer for 1 epoch, content and joint RQ-VAE, signals pre and post."""
    work = tmp_path_factory.mktemp("bench-codes")
    out = work / "out"
    copy_dataset(embedded_synthetic.root, out / "synthetic")
    args = ["--task", "synthetic", "--scheme", "content", "--scheme", "joint", "--quantizer", "rqvae"]
    args += ["--signal-latent", "pre", "--signal-latent", "post", "--config", "tokenizer-small", "--epochs", "1", "--out", str(out)]
    return run_script("bench_codes", *args, cwd=work), out


def test_bench_codes(codes_run):
    completed, out = codes_run
    results = json.loads((out / "results.json").read_text())
    # signals after quantization (post) only for the scheme with signals; content runs once
    assert set(results) == {"synthetic/content/rqvae/pre", "synthetic/joint/rqvae/pre", "synthetic/joint/rqvae/post"}
    for key, cell in results.items():
        assert cell["epochs"] == 1
        assert (out / "codes" / key.replace("/", "-") / "id_table.csv").is_file()
        assert 0 <= cell["health"]["collision_rate"] <= 1
    assert "| task | scheme | quantizer | signals on |" in completed.stdout
    assert "| synthetic | joint | rqvae | post |" in completed.stdout


def test_bench_decode_on_trained_codes(codes_run, tmp_path):
    """The BENCHMARKS.md form: --codes <a codes directory> (the real ID table instead of random IDs)."""
    _, out = codes_run
    codes = out / "codes" / "synthetic-joint-rqvae-pre"
    items = sum(1 for _ in (codes / "id_table.csv").open()) - 1  # header line
    completed = run_script("bench_decode", "--codes", str(codes), *TINY_DECODE, "--json", str(tmp_path / "decode.json"), cwd=tmp_path)
    check_decode_report(completed, tmp_path / "decode.json", items)


def test_bench_train(codes_run, tmp_path):
    """Every training mode of the small decoder (float32, bf16 autocast, nn.Dropout) on the synthetic task: 1 timed step per block."""
    _, out = codes_run
    report_path = tmp_path / "train.json"
    args = [str(out / "synthetic"), "--codes", str(out / "codes" / "synthetic-joint-rqvae-pre"), "--config", "decoder-small"]
    args += ["--tasks", "rec,search", "--steps", "1", "--threads", "1", "--bf16", "--torch-dropout", "--json", str(report_path)]
    completed = run_script("bench_train", *args, cwd=tmp_path)
    report = json.loads(report_path.read_text())
    assert report["dataset"] == "synthetic" and report["threads"] == 1
    assert min(report["ratio"], report["bf16_ratio"], report["dropout_ratio"]) > 0
    assert set(report["modes"]) == {"every position", "sliding window", "every position, bf16", "every position, nn.Dropout"}
    for numbers in report["modes"].values():
        assert numbers["targets_per_s"] > 0 and numbers["rows"] > 0 and numbers["timed_steps"] >= 1
    for line in ("every position / sliding window:", "bf16 / float32 (every position):", "unisr dropout / nn.Dropout"):
        assert line in completed.stdout


@pytest.fixture(scope="module")
def one_epoch_run(codes_run, tmp_path_factory) -> Path:
    """A one-epoch small decoder on the synthetic task and the joint codes (no guidance sweep), shared by the smoke tests."""
    from unisr import api

    _, out = codes_run
    config = api.decoder_config("decoder-small", epochs=1, progress=False, guidance_grid=(), val_max_requests=50)
    codes = out / "codes" / "synthetic-joint-rqvae-pre"
    return api.train(out / "synthetic", codes, config, tmp_path_factory.mktemp("run") / "run").directory


def test_bench_guidance(one_epoch_run, tmp_path):
    """The one-epoch run; two weights on 20 validation and 20 test requests per task."""
    run = one_epoch_run
    report_path = tmp_path / "guidance.json"
    args = [str(run), "--weights", "0,1", "--valid-requests", "20", "--test-requests", "20", "--prior", "items", "--json", str(report_path)]
    completed = run_script("bench_guidance", *args, cwd=tmp_path)
    report = json.loads(report_path.read_text())
    assert report["priors"] == {"rec": "items", "search": "items"}
    assert set(report["tasks"]) == {"rec", "search"}
    for task in report["tasks"].values():
        assert set(task["valid"]) == {"0.0", "1.0"} and task["chosen"] in (0.0, 1.0)
        assert "0.0" in task["test"] and all(cell["requests"] == 20 for cell in task["test"].values())
    assert "rec test (20)" in completed.stdout


def test_bench_serve(one_epoch_run, tmp_path):
    """The one-epoch run served batched and unbatched (subprocesses on loopback ports): 20 requests at concurrency 1 and 4."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'unisr[serve]')")
    pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'unisr[serve]')")
    report_path = tmp_path / "serve.json"
    args = [str(one_epoch_run), "--requests", "20", "--concurrency", "1,4", "--threads", "1", "--json", str(report_path)]
    completed = run_script("bench_serve", *args, cwd=tmp_path)
    report = json.loads(report_path.read_text())
    cells = [(app, concurrency) for app in ("batched", "unbatched") for concurrency in (1, 4)]
    assert [(row["app"], row["concurrency"]) for row in report["results"]] == cells
    assert report["errors"] == 0 and set(report["ratio"]) == {"1", "4"}
    for row in report["results"]:
        assert row["requests"] == 20 and row["errors"] == 0 and row["requests_per_s"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
    assert all(row["mean_batch"] == 1 for row in report["results"] if row["app"] == "unbatched")
    assert set(report["servers"]) == {"batched", "unbatched"} and all(server["startup_s"] > 0 for server in report["servers"].values())
    assert "| app | concurrency | requests | requests/s |" in completed.stdout and "batched / unbatched requests/s" in completed.stdout


def test_bench_baselines(embedded_synthetic, tmp_path):
    """Every baseline on the synthetic task; SASRec from a one-epoch config."""
    out = tmp_path / "out"
    copy_dataset(embedded_synthetic.root, out / "synthetic")
    sasrec = tmp_path / "sasrec-tiny.yaml"
    sasrec.write_text("hidden: 16\nlayers: 1\nheads: 1\nepochs: 1\npatience: 1\nval_max_requests: 50\n")
    args = ["--task", "synthetic", "--out", str(out), "--sasrec-config", str(sasrec)]
    baselines = load_script("bench_baselines").api.BASELINES
    for name in baselines:
        args += ["--baseline", name]
    completed = run_script("bench_baselines", *args, cwd=tmp_path)
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {f"synthetic/{name}" for name in baselines}
    assert set(results["synthetic/sasrec"]["results"]) == {"rec"} and set(results["synthetic/bm25"]["results"]) == {"search"}
    assert set(results["synthetic/popularity"]["results"]) == {"rec", "search"}
    assert "| task | baseline | kind | requests |" in completed.stdout and "| synthetic | sasrec | rec |" in completed.stdout


@pytest.mark.slow
def test_bench_compare(embedded_synthetic, tmp_path):
    """The synthetic preset with a tiny compare config: content codes (1 epoch) × a 1+1-layer joint decoder (1 epoch of 256), popularity."""
    config = tmp_path / "compare-tiny.yaml"
    config.write_text(
        "schemes: [content]\ndecoders: [joint]\nseeds: [0]\nrandom_ids: false\nbaselines: [popularity]\n"
        "tokenizer: tokenizer-small\ndecoder: decoder-small\ntokenizer_overrides: {epochs: 1}\n"
        "decoder_overrides: {epochs: 1, patience: 1, examples_per_epoch: 256, val_max_requests: 50, beam_size: 10, "
        "encoder_layers: 1, decoder_layers: 1}\n"
    )
    out = tmp_path / "runs"
    directory = out / "compare-synthetic"
    copy_dataset(embedded_synthetic.root, directory / "dataset")  # the preset's task is prepared here; a copy is read back
    completed = run_script("bench_compare", "synthetic", "--config", str(config), "--out", str(out), cwd=tmp_path)
    assert f"equivalent: unisr compare synthetic --out {directory} --config {config}" in completed.stdout
    wall = json.loads((directory / "wall.json").read_text())
    assert wall["preset"] == "synthetic" and wall["full"] is False and wall["wall_seconds"] > 0
    for name in ("results.json", "results.csv", "results.md"):
        assert (directory / name).is_file(), name
    cells = json.loads((directory / "results.json").read_text())["cells"]
    assert [cell["name"] for cell in cells] == ["content-rqvae-joint-s0"]
    assert "| content (rqvae) | joint |" in completed.stdout
    assert re.search(r"^synthetic: \d+ s", completed.stdout, re.MULTILINE)


def test_bench_compare_presets_name_known_tasks():
    """Every preset names a task under tasks/ (the real-data presets themselves need ../shared/data and hours of CPU)."""
    from unisr.data.tasks import load_task

    for name, preset in load_script("bench_compare").PRESETS.items():
        assert load_task(preset.task).name, name
