"""Hostile input: every bad argument, value or file is refused with one line that names what is at fault.

CLI cases: exit code 2, exactly one `error: ...` line on stderr, no traceback. API cases: a one-line UnisrError.
Every case also checks that nothing was left in the output location (no OUT, OUT.partial or temporary siblings)
and that nothing new appeared beside the dataset, codes and run it read.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from unisr import api
from unisr.cli import main as cli
from unisr.decoder.guidance import Guidance
from unisr.embeddings import EmbedConfig, embed_dataset
from unisr.errors import UnisrError
from unisr.experiments.compare import CompareConfig
from unisr.io import sha1_text
from unisr.tokenizer.config import TokenizerConfig

EMBEDDING_DIM = 16
TINY_DECODER = {  # one optimizer step: the run only has to exist
    "encoder_layers": 1,
    "decoder_layers": 1,
    "d_model": 16,
    "heads": 2,
    "head_dim": 8,
    "feed_forward": 32,
    "batch_size": 64,
    "examples_per_epoch": 64,
    "val_max_requests": 10,
    "beam_size": 10,
    "guidance_grid": [],
    "threads": 1,
    "epochs": 1,
    "progress": False,
}


class Pipeline(NamedTuple):
    work: Path  # holds dataset/, codes/ and run/ (the run links the others relatively)
    dataset: Path
    codes: Path
    run: Path
    user: str  # a user of the dataset
    item: str  # an item with a semantic ID


def fill_cache(directory: Path, texts: list[str]) -> None:
    """A cache shard with a random vector for every text, so embedding needs no model."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = sorted({sha1_text(text) for text in texts})
    vectors = np.random.default_rng(0).normal(size=(len(keys), EMBEDDING_DIM)).astype(np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, keys=np.array(keys), vectors=vectors)
    (directory / "shard-00000-1.npz").write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    """The synthetic task, embedded with random vectors, tiny codes and a one-step run."""
    root = tmp_path_factory.mktemp("hostile")
    work = root / "work"
    dataset = api.prepare_dataset("synthetic", work / "dataset")
    fill_cache(root / "cache", dataset.catalog.texts + [query.text for query in dataset.queries])
    embed_dataset(dataset.root, EmbedConfig(cache_dir=str(root / "cache"), progress=False))
    codes = api.train_codes(dataset.root, api.tokenizer_config("tokenizer-small", epochs=1, progress=False), work / "codes")
    run = api.train(dataset.root, codes.directory, api.decoder_config("decoder-small", **TINY_DECODER), work / "run")
    for directory in (codes.directory, run.directory):
        shutil.rmtree(directory / "train", ignore_errors=True)  # checkpoints: not needed to answer, and copied per case
    return Pipeline(work, dataset.root, codes.directory, run.directory, dataset.splits[0].user_id, codes.tokenizer.table.item_ids[1])


@pytest.fixture(scope="module")
def retriever(pipeline):
    return api.load(pipeline.run)


class ReachedWork(Exception):
    """A case got past validation into training or model loading: a failure, raised at once instead of minutes later."""


@pytest.fixture(autouse=True)
def refuse_real_work(monkeypatch):
    """No debug traceback; and no case may train or load a sentence encoder (validation must stop it before)."""
    import lightning.pytorch as lightning

    import unisr.embeddings.embed as embed_module

    def reached(*args, **kwargs):
        raise ReachedWork("a hostile case reached training or model loading")

    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    monkeypatch.setattr(lightning.Trainer, "fit", reached)
    monkeypatch.setattr(embed_module, "load_sentence_transformer", reached)


def listing(directory: Path) -> list[str]:
    """Every path under ``directory`` (relative), hidden ones included."""
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*")) if directory.exists() else []


class Place(NamedTuple):
    """Where one case runs: the pipeline (or a copy of it) and an output folder that must stay as it was."""

    pipeline: Pipeline
    out_dir: Path  # holds {OUT}; nothing may be written here
    bad: Path  # a file a case writes its bad content to ({BAD})

    def fill(self, value: Any) -> Any:
        """``value`` with its placeholders ({D}, {C}, {R}, {OUT}, {BAD}, {FILE}, {USER}, {ITEM}) filled in."""
        if not isinstance(value, str):
            return value
        pipeline = self.pipeline
        for name, filled in (
            ("D", pipeline.dataset),
            ("C", pipeline.codes),
            ("R", pipeline.run),
            ("OUT", self.out_dir / "OUT"),
            ("BAD", self.bad),
            ("FILE", self.out_dir.parent / "a-file.txt"),
            ("USER", pipeline.user),
            ("ITEM", pipeline.item),
        ):
            value = value.replace("{" + name + "}", str(filled))
        return value


def place_for(pipeline: Pipeline, tmp_path: Path, copy: bool = False) -> Place:
    if copy:
        work = tmp_path / "work"
        shutil.copytree(pipeline.work, work)
        pipeline = pipeline._replace(work=work, dataset=work / "dataset", codes=work / "codes", run=work / "run")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (tmp_path / "a-file.txt").write_text("not a directory\n")
    return Place(pipeline, out_dir, tmp_path / "bad.yaml")


def assert_cli_error(capsys, place: Place, args: list[str], fragments: list[str]) -> None:
    before, beside = listing(place.out_dir), listing(place.pipeline.work)
    code = cli.main([place.fill(arg) for arg in args])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    for fragment in fragments:
        assert place.fill(fragment) in lines[0], lines[0]
    assert listing(place.out_dir) == before, "an output was left behind"
    assert listing(place.pipeline.work) == beside, "something was written beside the inputs"


def assert_api_error(place: Place, call: Callable[[], Any], fragments: list[str]) -> None:
    before, beside = listing(place.out_dir), listing(place.pipeline.work)
    with pytest.raises(UnisrError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message.strip(), message
    for fragment in fragments:
        assert place.fill(fragment) in message, message
    assert listing(place.out_dir) == before, "an output was left behind"
    assert listing(place.pipeline.work) == beside, "something was written beside the inputs"


# ----- the command line: options, arguments and values ------------------------------------------------------------------
# (args, fragments the one error line must contain, content of {BAD} or None)
CLI_CASES = [
    (["search", "{R}", ""], ["empty query"], None),
    (["search", "{R}", "   "], ["empty query"], None),
    (["search", "{R}", "lamp", "-k", "0"], ["k=0"], None),
    (["search", "{R}", "lamp", "-k", "-3"], ["k=-3"], None),
    (["search", "{R}", "lamp", "-k", "1.5"], ["'-k' / '--k'", "valid integer"], None),
    (["search", "{R}", "lamp", "--fuse", "bogus"], ["--fuse 'bogus'", "bm25"], None),
    (["search", "{R}", "lamp", "--user", "ghost"], ["unknown user 'ghost'"], None),
    (["search", "{R}", "lamp", "--guidance", "-1"], ["guidance weight", "-1"], None),
    (["search", "{R}", "lamp", "--guidance", "nan"], ["guidance weight"], None),
    (["search", "{FILE}", "lamp"], ["a-file.txt", "not a run directory"], None),
    (["search", "/no/such/run", "lamp"], ["/no/such/run", "not a run directory"], None),
    (["search", "{D}", "lamp"], ["dataset/manifest.json", "not a unisr run manifest"], None),
    (["recommend", "{R}"], ["exactly one of a history or a user"], None),
    (["recommend", "{R}", "--history", "{ITEM}", "--user", "{USER}"], ["exactly one of a history or a user"], None),
    (["recommend", "{R}", "--history", "NOPE1,{ITEM}"], ["unknown to dataset", "NOPE1"], None),
    (["recommend", "{R}", "--user", "ghost"], ["unknown user 'ghost'"], None),
    (["recommend", "{R}", "--user", "{USER}", "-k", "0"], ["k=0"], None),
    (["recommend", "{R}", "--user", "{USER}", "-k", "100000"], ["k=100000", "number of items"], None),
    (["recommend", "{R}", "--user", "{USER}", "--guidance", "-2"], ["guidance weight"], None),
    (["recommend", "{R}", "--user", "{USER}", "--cold-share", "1.5"], ["cold share", "[0, 1]"], None),
    (["evaluate", "{D}", "--baseline", "dense", "--cold-share", "0.1"], ["apply to a run"], None),
    (["evaluate", "{D}"], ["exactly one of --run RUN_DIR or --baseline NAME"], None),
    (["evaluate", "{D}", "--run", "{R}", "--baseline", "popularity"], ["exactly one of"], None),
    (["evaluate", "{D}", "--baseline", "nope"], ["--baseline 'nope'", "popularity"], None),
    (["evaluate", "{D}", "--baseline", "popularity", "--split", "train"], ["--split 'train'"], None),
    (["evaluate", "{D}", "--baseline", "popularity", "--tasks", "rec,bogus"], ["'bogus'", "rec, search"], None),
    (["evaluate", "{D}", "--baseline", "popularity", "--tasks", ","], ["task", "rec, search"], None),
    (["evaluate", "{D}", "--baseline", "popularity", "-k", "5,x"], ["-k '5,x'"], None),
    (["evaluate", "{D}", "--baseline", "popularity", "-k", "-5"], ["-k '-5'", "positive"], None),
    (["evaluate", "{D}", "--baseline", "popularity", "--fuse", "bm25"], ["apply to a run"], None),
    (["evaluate", "{D}", "--baseline", "popularity", "--guidance-rec", "1"], ["apply to a run"], None),
    (["evaluate", "{D}", "--baseline", "dense", "--guidance-prior", "items"], ["apply to a run"], None),
    (["evaluate", "{D}", "--run", "{R}", "--fuse", "nope"], ["--fuse 'nope'"], None),
    (["evaluate", "{D}", "--run", "{R}", "--guidance-search", "-1"], ["guidance_search=-1", "at least 0"], None),
    (["evaluate", "/no/such/dataset", "--baseline", "popularity"], ["/no/such/dataset", "not a prepared dataset"], None),
    (["evaluate", "{D}", "--baseline", "popularity", "--out", "{OUT}", "--split", "nope"], ["--split 'nope'"], None),
    (["evaluate", "{D}", "--baseline", "popularity", "--tasks", "rec", "--out", "{C}"], ["codes", "Is a directory"], None),
    (["data", "stats", "{FILE}"], ["a-file.txt", "not a prepared dataset"], None),
    (["data", "stats", "{C}"], ["not a prepared dataset"], None),
    (["data", "prepare", "nope", "--out", "{OUT}"], ["unknown task 'nope'", "known tasks"], None),
    (["data", "prepare", "synthetic", "--out", "{FILE}"], ["a-file.txt", "not an empty directory"], None),
    (["data", "prepare", "synthetic", "--out", "{D}"], ["already holds a prepared dataset"], None),
    (["embed", "{D}", "--batch-size", "0"], ["'--batch-size'"], None),
    (["embed", "{D}", "--model", "./no-such-model-dir", "--no-progress"], ["--model ./no-such-model-dir", "no such directory"], None),
    (["embed", "{FILE}"], ["not a prepared dataset"], None),
    (["codes", "train", "{D}", "--out", "{OUT}", "--scheme", "bogus"], ["--scheme 'bogus'", "joint"], None),
    (["codes", "train", "{D}", "--out", "{OUT}", "--quantizer", "bogus"], ["--quantizer 'bogus'", "rqvae"], None),
    (["codes", "train", "{D}", "--out", "{OUT}", "--learning-rate", "-1"], ["learning_rate=-1", "greater than 0"], None),
    (["codes", "train", "{D}", "--out", "{OUT}", "--beta", "-0.5"], ["beta=-0.5", "at least 0"], None),
    (["codes", "train", "{D}", "--out", "{OUT}", "--lambda-search", "-1"], ["lambda_search=-1"], None),
    (["codes", "train", "{D}", "--out", "{OUT}", "--codebook-size", "1"], ["'--codebook-size'"], None),
    (["codes", "train", "{D}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml", "hidden_dims[1]", "'x'"], "hidden_dims: [64, x]\n"),
    (["codes", "train", "{D}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml", "unknown setting 'levles'"], "levles: 3\n"),
    (["codes", "train", "{D}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml", "epochs must be at least 1"], "epochs: 0\n"),
    (["codes", "train", "{D}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml", "temperature=0"], "temperature: 0\n"),
    (["codes", "train", "{D}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml", "levels", "expected a number"], "levels: three\n"),
    (["codes", "train", "{D}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml:2", "not valid YAML"], "levels: 3\n  x: y\n"),
    (["codes", "train", "{D}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml", "expected a mapping"], "- 1\n- 2\n"),
    (["codes", "train", "{D}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml", "not UTF-8"], "levels: \udcff\n"),
    (["codes", "train", "{D}", "--out", "{OUT}", "--config", "no-such-config"], ["--config no-such-config", "no such config"], None),
    (["codes", "train", "{D}", "--out", "{OUT}", "--config", "{D}"], ["--config", "no such config"], None),
    (["codes", "train", "{FILE}", "--out", "{OUT}"], ["not a prepared dataset"], None),
    (["codes", "inspect", "/no/such/codes"], ["not a codes directory"], None),
    (["codes", "inspect", "{C}", "--examples", "-1"], ["'--examples'"], None),
    (["codes", "assign", "{C}", "--items", "NOPE"], ["'NOPE'", "not in the catalog"], None),
    (["codes", "assign", "{C}", "--items", ","], ["item_ids", "at least one"], None),
    (["train", "{D}", "--codes", "{C}", "--out", "{OUT}", "--tasks", "bogus"], ["tasks", "'bogus'", "rec, search"], None),
    (["train", "{D}", "--codes", "{C}", "--out", "{OUT}", "--learning-rate", "-1"], ["learning_rate=-1", "greater than 0"], None),
    (["train", "{D}", "--codes", "{C}", "--out", "{OUT}", "--search-share", "2"], ["search_share", "[0, 1]"], None),
    (["train", "{D}", "--codes", "{C}", "--out", "{OUT}", "--index-share", "1"], ["index_share", "[0, 1)"], None),
    (["train", "{D}", "--codes", "{C}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml", "dropout=5", "[0, 1)"], "dropout: 5\n"),
    (
        ["train", "{D}", "--codes", "{C}", "--out", "{OUT}", "--config", "{BAD}"],
        ["bad.yaml", "batch_size", "at least 1"],
        "batch_size: -4\n",
    ),
    (["train", "{D}", "--codes", "{C}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml", "beam_size", "top_k"], "beam_size: 5\n"),
    (
        ["train", "{D}", "--codes", "{C}", "--out", "{OUT}", "--config", "{BAD}"],
        ["bad.yaml", "guidance_grid[1]"],
        "guidance_grid: [1, x]\n",
    ),
    (
        ["train", "{D}", "--codes", "{C}", "--out", "{OUT}", "--config", "{BAD}"],
        ["bad.yaml", "d_model", "expected a number"],
        "d_model: wide\n",
    ),
    (["train", "{D}", "--codes", "{C}", "--out", "{OUT}", "--config", "{BAD}"], ["bad.yaml", "warmup_steps=-1"], "warmup_steps: -1\n"),
    (["train", "{D}", "--codes", "/no/such/codes", "--out", "{OUT}"], ["/no/such/codes", "not a codes directory"], None),
    (["train", "/no/such/dataset", "--codes", "{C}", "--out", "{OUT}"], ["/no/such/dataset", "not a prepared dataset"], None),
    (["compare", "{D}", "--out", "{OUT}", "--schemes", "bogus"], ["schemes", "'bogus'"], None),
    (["compare", "{D}", "--out", "{OUT}", "--seeds", "a,b"], ["--seeds 'a,b'"], None),
    (["compare", "{D}", "--out", "{OUT}", "--metric", "ndcg@3"], ["metric='ndcg@3'"], None),
    (["compare", "{D}", "--out", "{OUT}", "--split", "train"], ["split='train'"], None),
    (["compare", "{D}", "--out", "{OUT}", "--tokenizer-epochs", "0"], ["epochs must be at least 1"], None),
    (["compare", "{D}", "--out", "{OUT}", "--decoder-epochs", "-2"], ["epochs must be at least 1"], None),
    (
        ["compare", "{D}", "--out", "{OUT}", "--tokenizer-config", "{BAD}"],
        ["bad.yaml", "dead_code_threshold=-1"],
        "dead_code_threshold: -1\n",
    ),
    (["serve", "{R}", "--port", "0"], ["'--port'"], None),
    (["serve", "{R}", "--max-batch", "0"], ["'--max-batch'"], None),
]


def case_id(case) -> str:
    """A readable test id: the command line of a CLI case, the damaged file and the damage of a file case."""
    values = case.values if hasattr(case, "values") else case
    if isinstance(values[0], list):
        return " ".join(values[0])[:70]
    name = getattr(values[1], "__qualname__", "").split(".")[0]
    return f"{values[0]}-{name}"


@pytest.mark.parametrize(("args", "fragments", "bad"), CLI_CASES, ids=[case_id(case) for case in CLI_CASES])
def test_cli_refuses_bad_arguments(capsys, pipeline, tmp_path, args, fragments, bad):
    place = place_for(pipeline, tmp_path)
    if bad is not None:
        place.bad.write_bytes(bad.encode("utf-8", "surrogateescape"))
    assert_cli_error(capsys, place, args, fragments)


# ----- the Python API: types and ranges of arguments ---------------------------------------------------------------------
# (call taking (place, retriever), fragments of the message)
API_CASES = [
    (lambda p, r: r.search("lamp", k=1.5), ["k", "expected an integer", "1.5"]),
    (lambda p, r: r.search("lamp", k="3"), ["k", "expected an integer", "'3'"]),
    (lambda p, r: r.search("lamp", k=None), ["k", "expected an integer", "None"]),
    (lambda p, r: r.search("lamp", k=True), ["k", "expected an integer", "True"]),
    (lambda p, r: r.search("lamp", k=0), ["k=0"]),
    (lambda p, r: r.search(b"lamp"), ["query", "b'lamp'", "bytes"]),
    (lambda p, r: r.search(3), ["query", "int"]),
    (lambda p, r: r.search(None), ["query", "None"]),
    (lambda p, r: r.search(["lamp"]), ["query", "list"]),
    (lambda p, r: r.search("lamp", user=7), ["user", "user id", "int"]),
    (lambda p, r: r.search("lamp", user="ghost"), ["unknown user 'ghost'"]),
    (lambda p, r: r.recommend(history=[1, 2]), ["history[0]", "item id", "int"]),
    (lambda p, r: r.recommend(history=p.fill("{ITEM}")), ["history", "list of item ids", "str"]),
    (lambda p, r: r.recommend(history={"a": 1}), ["history", "dict"]),
    (lambda p, r: r.recommend(history=[p.fill("{ITEM}"), ""]), ["history[1]", "non-empty item id"]),
    (lambda p, r: r.recommend(history=["NOPE"]), ["unknown to dataset", "NOPE"]),
    (lambda p, r: r.recommend(), ["exactly one of a history or a user"]),
    (lambda p, r: r.recommend(user=42), ["user", "int"]),
    (lambda p, r: r.recommend(user=p.fill("{USER}"), k=2.0), ["k", "2.0"]),
    (lambda p, r: r.recommend(user=p.fill("{USER}"), exclude_history="yes"), ["exclude_history", "True or False"]),
    (lambda p, r: r.recommend_batch("abc"), ["histories", "list of histories"]),
    (lambda p, r: r.recommend_batch([[1]]), ["histories[0][0]", "int"]),
    (lambda p, r: r.recommend_batch([[p.fill("{ITEM}")]], users=["a", "b"]), ["1 histories but 2 users"]),
    (lambda p, r: r.recommend_batch([[p.fill("{ITEM}")]], users="u1"), ["users", "list of user ids"]),
    (lambda p, r: r.search_batch("lamp"), ["queries", "list of query texts"]),
    (lambda p, r: r.search_batch(["lamp", b"x"]), ["queries[1]", "bytes"]),
    (lambda p, r: r.search_batch(["lamp"], users=[None, None]), ["1 queries but 2 users"]),
    (lambda p, r: r.search_batch(["lamp"], histories=[[3]]), ["histories[0][0]", "int"]),
    (lambda p, r: r.with_guidance(rec=-1), ["rec guidance weight", "-1"]),
    (lambda p, r: r.with_guidance(search="x"), ["search guidance weight", "expected a number"]),
    (lambda p, r: r.with_cold_share(-0.1), ["cold share", "[0, 1]"]),
    (lambda p, r: r.with_cold_share("x"), ["cold share", "expected a number"]),
    (lambda p, r: api.load(None), ["run_dir", "expected a path", "None"]),
    (lambda p, r: api.load(3), ["run_dir", "int"]),
    (lambda p, r: api.load(b"/tmp/run"), ["run_dir", "bytes"]),
    (lambda p, r: api.load(""), ["run_dir", "empty path"]),
    (lambda p, r: api.load("/no/such/run"), ["/no/such/run", "not a run directory"]),
    (lambda p, r: api.load(p.pipeline.run, guidance=(1.0,)), ["guidance", "(rec, search)"]),
    (lambda p, r: api.load(p.pipeline.run, guidance=Guidance(-1.0, 0.0)), ["guidance.rec=-1"]),
    (lambda p, r: api.load(p.pipeline.run, dataset_dir=p.pipeline.codes), ["not a prepared dataset"]),
    (lambda p, r: api.load(p.pipeline.run, codes_dir=p.pipeline.dataset), ["manifest.json", "not a unisr codes manifest"]),
    (lambda p, r: api.hybrid_search(r, "lamp", fuse="nope"), ["--fuse 'nope'"]),
    (lambda p, r: api.hybrid_search(r, "lamp", k=-1), ["k=-1"]),
    (lambda p, r: api.hybrid_search(r, b"lamp"), ["query", "bytes"]),
    (lambda p, r: api.hybrid_search("run", "lamp"), ["retriever", "GenerativeRetriever"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset, baseline="popularity", split="nope"), ["split 'nope'", "valid, test"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset, baseline="popularity", split=None), ["split None"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset, baseline="popularity", split=["test"]), ["split ['test']"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset, baseline="popularity", tasks=("bogus",)), ["'bogus'", "rec, search"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset, baseline="popularity", tasks=()), ["task", "one or more"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset, baseline="popularity", ks=10), ["cut-offs 10"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset, baseline="popularity", ks=(5, 0)), ["cut-offs (5, 0)", "positive integers"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset, baseline="popularity", ks=("5",)), ["cut-offs ('5',)"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset, baseline=3), ["--baseline 3"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset), ["exactly one of"]),
    (lambda p, r: api.evaluate_ranker(p.pipeline.dataset, p.pipeline.run, guidance_rec="x"), ["guidance_rec", "'x'"]),
    (lambda p, r: api.evaluate_ranker(None, baseline="popularity"), ["dataset_dir", "None"]),
    (lambda p, r: api.prepare_dataset(None), ["task", "None"]),
    (lambda p, r: api.prepare_dataset(3), ["task", "int"]),
    (lambda p, r: api.prepare_dataset("synthetic", out=5), ["out", "int"]),
    (lambda p, r: api.prepare_dataset("synthetic", out=p.fill("{OUT}"), overwrite="yes"), ["overwrite", "True or False"]),
    (lambda p, r: api.prepare_dataset("synthetic", out=p.fill("{OUT}"), cold_start="no"), ["cold_start", "'no'"]),
    (lambda p, r: api.load_dataset(None), ["path", "None"]),
    (lambda p, r: api.load_dataset(p.pipeline.dataset, verify="x"), ["verify"]),
    (lambda p, r: api.stats(123), ["path", "int"]),
    (lambda p, r: api.embed(p.pipeline.dataset, config="fast"), ["config", "EmbedConfig"]),
    (lambda p, r: EmbedConfig(batch_size=0), ["batch_size=0", "at least 1"]),
    (lambda p, r: EmbedConfig(model=""), ["model", "empty"]),
    (lambda p, r: api.tokenizer_config(levels="x"), ["levels", "expected a number"]),
    (lambda p, r: api.tokenizer_config(hidden_dims=[64, "x"]), ["hidden_dims[1]", "'x'"]),
    (lambda p, r: api.tokenizer_config(learning_rate=-1.0), ["learning_rate=-1", "greater than 0"]),
    (lambda p, r: api.tokenizer_config(levls=3), ["unknown setting 'levls'"]),
    (lambda p, r: api.tokenizer_config(config=7), ["config", "int"]),
    (lambda p, r: TokenizerConfig(batch_size=-1), ["batch_size", "at least 1"]),
    (lambda p, r: api.decoder_config(dropout=5), ["dropout=5", "[0, 1)"]),
    (lambda p, r: api.decoder_config(learning_rate=0), ["learning_rate=0", "greater than 0"]),
    (lambda p, r: api.decoder_config(epochs=0), ["epochs", "at least 1"]),
    (lambda p, r: api.decoder_config(batch_size=-8), ["batch_size", "at least 1"]),
    (lambda p, r: api.decoder_config(tasks=["rec", "ads"]), ["tasks", "'rec,ads'"]),
    (lambda p, r: api.decoder_config(guidance_grid=[0.0, -1.0]), ["guidance_grid", "≥ 0"]),
    (lambda p, r: api.decoder_config(dropout=float("nan")), ["dropout", "nan"]),
    (lambda p, r: api.compare_config(seeds=["a"]), ["seeds[0]", "'a'"]),
    (lambda p, r: api.compare_config(ks=[0, 10]), ["ks", "positive"]),
    (lambda p, r: api.compare_config(schemes=["bogus"]), ["schemes", "'bogus'"]),
    (lambda p, r: api.train_codes(p.pipeline.dataset, "joint", p.fill("{OUT}")), ["config", "TokenizerConfig"]),
    (lambda p, r: api.train(p.pipeline.dataset, p.pipeline.codes, {"epochs": 1}, p.fill("{OUT}")), ["config", "DecoderConfig"]),
    (lambda p, r: api.train(p.pipeline.dataset, p.pipeline.codes, out=3), ["out", "int"]),
    (lambda p, r: api.train(p.pipeline.dataset, None, out=p.fill("{OUT}")), ["codes_dir", "None"]),
    (lambda p, r: api.inspect(p.pipeline.codes, examples=-1), ["examples=-1"]),
    (lambda p, r: api.inspect(p.pipeline.codes, examples="3"), ["examples", "'3'"]),
    (lambda p, r: api.assign(p.pipeline.codes, item_ids="abc"), ["item_ids", "list"]),
    (lambda p, r: api.assign(p.pipeline.codes, item_ids=[1]), ["item_ids[0]", "int"]),
    (lambda p, r: api.load_codes(None), ["codes_dir", "None"]),
    (
        lambda p, r: api.compare(p.pipeline.dataset, p.fill("{OUT}"), CompareConfig(tokenizer_overrides={"epochs": 0})),
        ["epochs must be at least 1"],
    ),
    (
        lambda p, r: api.compare(p.pipeline.dataset, p.fill("{OUT}"), CompareConfig(decoder_overrides={"dropuot": 0.1})),
        ["unknown setting 'dropuot'"],
    ),
    (lambda p, r: api.compare("synthetic", p.fill("{OUT}"), cold_start="yes"), ["cold_start"]),
    (lambda p, r: api.quickstart(p.fill("{OUT}"), embed_config=None), ["embed_config", "EmbedConfig"]),
]


@pytest.mark.parametrize(("call", "fragments"), API_CASES)
def test_api_refuses_bad_arguments(pipeline, retriever, tmp_path, call, fragments):
    place = place_for(pipeline, tmp_path)
    assert_api_error(place, lambda: call(place, retriever), fragments)


# (content of the SASRec YAML, fragments of the message)
SASREC_CASES = [
    ("hidden: [64]\n", ["bad.yaml.hidden", "expected a number"]),
    ("layers: 2\nlayer: 3\n", ["bad.yaml", "unknown setting 'layer'"]),
    ("dropout: 5\n", ["bad.yaml", "dropout"]),
    ("epochs: 0\n", ["bad.yaml", "epochs"]),
    ("learning_rate: -1\n", ["bad.yaml", "learning_rate"]),
]


@pytest.mark.parametrize(("content", "fragments"), SASREC_CASES)
def test_sasrec_config_is_checked_before_training(pipeline, tmp_path, content, fragments):
    place = place_for(pipeline, tmp_path)
    place.bad.write_text(content)
    assert_api_error(
        place, lambda: api.evaluate_ranker(pipeline.dataset, baseline="sasrec", tasks=("rec",), sasrec_config=place.bad), fragments
    )


# ----- damaged files ------------------------------------------------------------------------------------------------------
def edit_lines(edit: Callable[[list[str]], list[str]]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        path.write_text("".join(edit(path.read_text(encoding="utf-8").splitlines(keepends=True))), encoding="utf-8")

    return damage


def edit_cell(line: int, column: int, value: str) -> Callable[[Path], None]:
    """Set one cell of a CSV line (1-based line, 0-based column)."""

    def edit(lines: list[str]) -> list[str]:
        cells = lines[line - 1].rstrip("\n").split(",")
        cells[column] = value
        lines[line - 1] = ",".join(cells) + "\n"
        return lines

    return edit_lines(edit)


def edit_record(line: int, change: Callable[[dict], Any]) -> Callable[[Path], None]:
    """Change the JSON object on one line of a JSONL file (1-based) in place."""

    def edit(lines: list[str]) -> list[str]:
        record = json.loads(lines[line - 1])
        change(record)
        lines[line - 1] = json.dumps(record) + "\n"
        return lines

    return edit_lines(edit)


def edit_json(change: Callable[[Any], Any]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        value = json.loads(path.read_text(encoding="utf-8"))
        path.write_text(json.dumps(change(value)), encoding="utf-8")

    return damage


def write(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def truncate(path: Path) -> None:
    """Keep the first half, never ending on a line break (so the last line is always cut)."""
    content = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(content[:-2] if content.endswith(b"\n") else content)


def replace_by_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def save_array(array: np.ndarray) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with open(path, "wb") as handle:
            np.save(handle, array)

    return damage


def put(record: dict, key: str, value: Any) -> None:
    record[key] = value


def duplicate_line(source: int, target: int) -> Callable[[Path], None]:
    """Overwrite line ``target`` with a copy of line ``source`` (1-based)."""

    def edit(lines: list[str]) -> list[str]:
        lines[target - 1] = lines[source - 1]
        return lines

    return edit_lines(edit)


def copy_codes(source: int, target: int) -> Callable[[Path], None]:
    """Give the item on CSV line ``target`` the semantic ID (and origin) of line ``source``."""

    def edit(lines: list[str]) -> list[str]:
        item = lines[target - 1].split(",", 1)[0]
        lines[target - 1] = item + "," + lines[source - 1].split(",", 1)[1]
        return lines

    return edit_lines(edit)


def append_line(line: str) -> Callable[[Path], None]:
    return edit_lines(lambda lines: [*lines, line])


UNKNOWN_ASSIGNED = "NOT-AN-ITEM,1,2,3,999,assigned\n"  # an ID given later (not pinned by the codes' manifest) to an unknown item


def item_embeddings(pipeline: Pipeline) -> str:
    return str(next((pipeline.dataset / "embeddings").iterdir()).relative_to(pipeline.work))


LOAD_CODES = ["codes", "inspect", "{C}", "--dataset", "{D}"]
LOAD_DATASET = ["data", "stats", "{D}"]
LOAD_RUN = ["recommend", "{R}", "--user", "{USER}"]
TRAIN = ["train", "{D}", "--codes", "{C}", "--out", "{OUT}"]

# (file under the pipeline's work folder, damage, CLI command that reads it, fragments of the error line)
ID_TABLE = "codes/id_table.csv"
DAMAGED_FILES = [
    (ID_TABLE, edit_cell(3, 1, "-1"), LOAD_CODES, ["id_table.csv:3", "code in column c0 -1", "outside 0..15"]),
    (ID_TABLE, edit_cell(3, 2, "99"), LOAD_CODES, ["id_table.csv:3", "c1 99", "outside 0..15"]),
    (ID_TABLE, edit_cell(3, 2, "99"), TRAIN, ["id_table.csv:3", "c1 99", "outside 0..15"]),
    (ID_TABLE, edit_cell(3, 2, "99"), ["codes", "assign", "{C}"], ["id_table.csv:3", "c1 99", "outside 0..15"]),
    (ID_TABLE, edit_cell(4, 4, "-2"), LOAD_CODES, ["id_table.csv:4", "collision token -2"]),
    (ID_TABLE, edit_cell(3, 1, "x"), LOAD_CODES, ["id_table.csv:3", "'x'", "not an integer"]),
    (ID_TABLE, edit_cell(5, 0, "NOT-AN-ITEM"), LOAD_CODES, ["id_table.csv", "not the IDs these codes were trained with"]),
    (ID_TABLE, append_line(UNKNOWN_ASSIGNED), LOAD_CODES, ["id_table.csv:", "'NOT-AN-ITEM'", "not in the catalog"]),
    (ID_TABLE, append_line(UNKNOWN_ASSIGNED), LOAD_RUN, ["id_table.csv:", "'NOT-AN-ITEM'", "not in the catalog"]),
    (ID_TABLE, edit_cell(5, 0, ""), LOAD_CODES, ["id_table.csv:5", "empty item id"]),
    (ID_TABLE, edit_cell(6, 5, "stolen"), LOAD_CODES, ["id_table.csv:6", "origin 'stolen'"]),
    (ID_TABLE, copy_codes(2, 3), LOAD_CODES, ["id_table.csv:3", "(line 2)", "share a semantic ID"]),
    (ID_TABLE, duplicate_line(2, 7), LOAD_CODES, ["id_table.csv:7", "appears twice (first on line 2)"]),
    (ID_TABLE, edit_lines(lambda lines: lines[:1]), LOAD_CODES, ["id_table.csv", "header but no items"]),
    (ID_TABLE, edit_lines(lambda lines: [*lines[:3], "a,1,2\n", *lines[3:]]), LOAD_CODES, ["id_table.csv:4", "expected 6 columns"]),
    (ID_TABLE, edit_lines(lambda lines: [*lines[:3], "\n", *lines[3:]]), LOAD_CODES, ["id_table.csv:4", "got 0"]),
    (ID_TABLE, edit_lines(lambda lines: ["item_id,c0,c1,origin\n", *lines[1:]]), LOAD_CODES, ["id_table.csv:1", "2 code columns"]),
    (ID_TABLE, edit_lines(lambda lines: ["id,c0,c1,c2,c3,origin\n", *lines[1:]]), LOAD_CODES, ["id_table.csv:1", "not an ID table"]),
    (ID_TABLE, write(b""), LOAD_CODES, ["id_table.csv:1", "not an ID table"]),
    (ID_TABLE, write(b"item_id,c0,c1,c2,c3,origin\nA,1,\xff,3,0,train\n"), LOAD_CODES, ["id_table.csv", "not UTF-8"]),
    (ID_TABLE, replace_by_directory, LOAD_CODES, ["id_table.csv", "ID table not found"]),
    (ID_TABLE, truncate, LOAD_CODES, ["id_table.csv:"]),
    ("codes/manifest.json", write(b""), LOAD_CODES, ["manifest.json:1", "not valid JSON"]),
    ("codes/manifest.json", edit_json(lambda manifest: [manifest]), LOAD_CODES, ["manifest.json", "not a unisr codes manifest"]),
    ("codes/manifest.json", edit_json(lambda manifest: {**manifest, "input_dim": "x"}), LOAD_CODES, ["manifest.json", "input_dim"]),
    ("codes/config.json", edit_json(lambda config: {**config, "levels": "x"}), LOAD_CODES, ["config.json.levels", "expected a number"]),
    ("codes/config.json", edit_json(lambda config: {**config, "codebook_size": 0}), LOAD_CODES, ["config.json", "codebook_size"]),
    ("codes/config.json", edit_json(lambda config: [config]), LOAD_CODES, ["config.json", "expected a mapping"]),
    ("codes/tokenizer.safetensors", truncate, LOAD_CODES, ["tokenizer.safetensors", "cannot load the tokenizer weights"]),
    ("codes/tokenizer.safetensors", write(b""), LOAD_CODES, ["tokenizer.safetensors", "cannot load"]),
    ("codes/health.json", write(b"{"), LOAD_CODES, ["health.json:1", "not valid JSON"]),
    ("dataset/items.jsonl", duplicate_line(1, 4), LOAD_DATASET, ["items.jsonl:4", "item_id", "appears twice (first on line 1)"]),
    (
        "dataset/items.jsonl",
        edit_record(3, lambda record: record.pop("item_id")),
        LOAD_DATASET,
        ["items.jsonl:3", "missing field 'item_id'"],
    ),
    ("dataset/items.jsonl", edit_record(2, lambda record: put(record, "item_id", ["A"])), LOAD_DATASET, ["items.jsonl:2", "'item_id'"]),
    ("dataset/items.jsonl", edit_record(2, lambda record: put(record, "item_id", True)), LOAD_DATASET, ["items.jsonl:2", "'item_id'"]),
    ("dataset/items.jsonl", edit_record(5, lambda record: put(record, "fields", "red")), LOAD_DATASET, ["items.jsonl:5", "'fields'"]),
    ("dataset/items.jsonl", edit_record(6, lambda record: put(record, "title", 12)), LOAD_DATASET, ["items.jsonl:6", "'title'"]),
    (
        "dataset/items.jsonl",
        edit_lines(lambda lines: [*lines[:2], "{oops\n", *lines[3:]]),
        LOAD_DATASET,
        ["items.jsonl:3", "not valid JSON"],
    ),
    ("dataset/items.jsonl", edit_lines(lambda lines: [*lines[:2], "[1, 2]\n", *lines[3:]]), LOAD_DATASET, ["items.jsonl:3", "JSON object"]),
    ("dataset/items.jsonl", write(b""), LOAD_DATASET, ["sequences.jsonl:1", "not in items.jsonl"]),
    ("dataset/items.jsonl", truncate, LOAD_DATASET, ["items.jsonl:"]),
    ("dataset/items.jsonl", write(b'{"item_id": "A", "title": "\xff"}\n'), LOAD_DATASET, ["items.jsonl", "not UTF-8"]),
    ("dataset/items.jsonl", replace_by_directory, LOAD_DATASET, ["items.jsonl", "missing from the prepared dataset"]),
    ("dataset/sequences.jsonl", edit_record(2, lambda record: put(record, "items", "abc")), LOAD_DATASET, ["sequences.jsonl:2", "'items'"]),
    (
        "dataset/sequences.jsonl",
        edit_record(2, lambda record: put(record, "timestamps", [1])),
        LOAD_DATASET,
        ["sequences.jsonl:2", "'timestamps'"],
    ),
    ("dataset/sequences.jsonl", duplicate_line(1, 3), LOAD_DATASET, ["sequences.jsonl:3", "user_id", "appears twice"]),
    (
        "dataset/sequences.jsonl",
        edit_record(4, lambda record: record["items"].__setitem__(0, "GHOST")),
        LOAD_DATASET,
        ["sequences.jsonl:4", "'GHOST'"],
    ),
    ("dataset/rec_split.jsonl", edit_record(2, lambda record: record.pop("valid")), LOAD_DATASET, ["rec_split.jsonl:2", "'valid'"]),
    (
        "dataset/rec_split.jsonl",
        edit_record(3, lambda record: put(record, "test", "GHOST")),
        LOAD_DATASET,
        ["rec_split.jsonl:3", "'GHOST'"],
    ),
    ("dataset/queries.jsonl", edit_record(2, lambda record: put(record, "split", "later")), LOAD_DATASET, ["queries.jsonl:2", "'later'"]),
    ("dataset/queries.jsonl", edit_record(3, lambda record: record.pop("text")), LOAD_DATASET, ["queries.jsonl:3", "'text'"]),
    ("dataset/queries.jsonl", edit_record(4, lambda record: put(record, "position", "x")), LOAD_DATASET, ["queries.jsonl:4", "'position'"]),
    ("dataset/queries.jsonl", edit_record(5, lambda record: put(record, "items", ["GHOST"])), LOAD_DATASET, ["queries.jsonl:5", "'GHOST'"]),
    ("dataset/cold_start.json", write(b"[]"), LOAD_DATASET, ["cold_start.json", '{"items"']),
    ("dataset/cold_start.json", write(b'{"items": ["GHOST"]}'), LOAD_DATASET, ["cold_start.json", "'GHOST'"]),
    ("dataset/manifest.json", write(b""), LOAD_DATASET, ["manifest.json:1", "not valid JSON"]),
    ("dataset/manifest.json", write(b"[1]"), LOAD_DATASET, ["manifest.json", "JSON object"]),
    ("dataset/manifest.json", edit_json(lambda manifest: {**manifest, "format_version": 99}), LOAD_DATASET, ["manifest.json", "99"]),
    (
        "dataset/manifest.json",
        edit_json(lambda manifest: {**manifest, "fingerprint": None}),
        LOAD_DATASET,
        ["manifest.json", "fingerprint"],
    ),
    ("{EMB}/items.npy", write(b""), LOAD_RUN, ["items.npy", "empty or truncated"]),
    ("{EMB}/items.npy", truncate, LOAD_RUN, ["items.npy"]),
    ("{EMB}/items.npy", save_array(np.zeros((3, EMBEDDING_DIM), np.float32)), LOAD_RUN, ["items.npy", "shape (3, 16)"]),
    ("{EMB}/items.npy", save_array(np.array(["a", "b"])), LOAD_RUN, ["items.npy", "<U1"]),
    ("{EMB}/queries.npy", save_array(np.zeros((2, 5), np.float32)), LOAD_RUN, ["queries.npy", "shape (2, 5)"]),
    ("{EMB}/queries.npy", write(b"not numpy"), LOAD_RUN, ["queries.npy", "unreadable"]),
    ("{EMB}/query_texts.json", write(b'{"a": 1}'), LOAD_RUN, ["query_texts.json", "list of query texts"]),
    ("{EMB}/meta.json", write(b"[]"), LOAD_RUN, ["meta.json", "JSON object"]),
    ("run/manifest.json", write(b""), LOAD_RUN, ["manifest.json:1", "not valid JSON"]),
    (
        "run/manifest.json",
        edit_json(lambda manifest: {**manifest, "kind": "other"}),
        LOAD_RUN,
        ["manifest.json", "not a unisr run manifest"],
    ),
    ("run/config.json", edit_json(lambda config: {**config, "dropout": 5}), LOAD_RUN, ["config.json", "dropout=5"]),
    ("run/config.json", edit_json(lambda config: {**config, "heads": "four"}), LOAD_RUN, ["config.json.heads", "expected a number"]),
    ("run/config.json", edit_json(lambda config: {**config, "colour": 1}), LOAD_RUN, ["config.json", "unknown setting 'colour'"]),
    ("run/model.safetensors", truncate, LOAD_RUN, ["model.safetensors", "cannot load the model weights"]),
    (
        "run/manifest.json",
        edit_json(lambda manifest: {key: v for key, v in manifest.items() if key != "query_dim"}),
        LOAD_RUN,
        ["manifest.json", "query_dim is missing or damaged"],
    ),
    ("run/layout.json", write(b'{"sizes": [1]}'), LOAD_RUN, ["layout.json", "expected level_sizes"]),
    ("run/manifest.json", edit_json(lambda manifest: [manifest]), LOAD_RUN, ["manifest.json", "not a unisr run manifest"]),
]


@pytest.mark.parametrize(("relative", "damage", "args", "fragments"), DAMAGED_FILES, ids=[case_id(case) for case in DAMAGED_FILES])
def test_damaged_files_are_one_line_errors(capsys, pipeline, tmp_path, relative, damage, args, fragments):
    place = place_for(pipeline, tmp_path, copy=True)
    damage(place.pipeline.work / relative.format(EMB=item_embeddings(place.pipeline)))
    assert_cli_error(capsys, place, args, fragments)


# ----- source files and task YAMLs of `unisr data prepare` ----------------------------------------------------------------
PROCESSED_TASK = "loader: amazon2014\nfiles: {sequences: user_sequence.txt, items: item_text.jsonl}\n"
LCREC_TASK = "loader: lcrec\nfiles: {interactions: x.inter.json, items: x.item.json}\n"
ATOMIC_TASK = "loader: movielens\nfiles: {interactions: ml.inter, items: ml.item}\n"
GOOD_SEQUENCES = "u1 A B C\nu2 B C A\n"
GOOD_ITEMS = '{"asin": "A", "title": "a"}\n{"asin": "B", "title": "b"}\n{"asin": "C", "title": "c"}\n'
LOG_TASK = "loader: synthetic\nqueries: {protocol: log, log: {SOURCE}/log.jsonl}\n"
ATOMIC_ITEMS = "item_id:token\tmovie_title:token_seq\n1\tToy Story\n2\tHeat\n"
# (task YAML, {source file: content}, fragments of the error line)
SOURCE_CASES = [
    (
        PROCESSED_TASK,
        {"user_sequence.txt": GOOD_SEQUENCES, "item_text.jsonl": GOOD_ITEMS + '{"asin": "A"}\n'},
        ["item_text.jsonl:4", "duplicate item 'A'"],
    ),
    (
        PROCESSED_TASK,
        {"user_sequence.txt": GOOD_SEQUENCES, "item_text.jsonl": '{"title": "x"}\n'},
        ["item_text.jsonl:1", "missing or empty asin"],
    ),
    (
        PROCESSED_TASK,
        {"user_sequence.txt": GOOD_SEQUENCES, "item_text.jsonl": GOOD_ITEMS + "{oops\n"},
        ["item_text.jsonl:4", "not valid JSON"],
    ),
    (
        PROCESSED_TASK,
        {"user_sequence.txt": GOOD_SEQUENCES, "item_text.jsonl": '{"asin": "A", "brand_group": "x"}\n'},
        ["item_text.jsonl:1", "brand_group"],
    ),
    (
        PROCESSED_TASK,
        {"user_sequence.txt": GOOD_SEQUENCES, "item_text.jsonl": '{"asin": "A", "categories": "Beauty"}\n'},
        ["item_text.jsonl:1", "categories"],
    ),
    (PROCESSED_TASK, {"user_sequence.txt": "u1 A B D\n", "item_text.jsonl": GOOD_ITEMS}, ["user_sequence.txt:1", "'D'", "not listed"]),
    (
        PROCESSED_TASK,
        {"user_sequence.txt": "u1 A B C\nu1 C B A\n", "item_text.jsonl": GOOD_ITEMS},
        ["user_sequence.txt:2", "duplicate user"],
    ),
    (PROCESSED_TASK, {"user_sequence.txt": "u1\n", "item_text.jsonl": GOOD_ITEMS}, ["user_sequence.txt:1", "no items"]),
    (PROCESSED_TASK, {"user_sequence.txt": GOOD_SEQUENCES}, ["item_text.jsonl", "not found"]),
    (LCREC_TASK, {"x.inter.json": "[1, 2]", "x.item.json": "{}"}, ["x.inter.json", "JSON object at the top level"]),
    (LCREC_TASK, {"x.inter.json": '{"u1": ["1"], "u1": ["2"]}', "x.item.json": "{}"}, ["x.inter.json", "duplicate user id 'u1'"]),
    (LCREC_TASK, {"x.inter.json": '{"u1": "1"}', "x.item.json": "{}"}, ["x.inter.json", "list of item ids"]),
    (ATOMIC_TASK, {"ml.inter": "user_id:token\titem_id:token\n1\t1\n", "ml.item": ATOMIC_ITEMS}, ["ml.inter:1", "timestamp"]),
    (
        ATOMIC_TASK,
        {"ml.inter": "user_id:token\titem_id:token\ttimestamp:float\n1\t1\tsoon\n", "ml.item": ATOMIC_ITEMS},
        ["ml.inter:2", "timestamp 'soon'"],
    ),
    (
        ATOMIC_TASK,
        {"ml.inter": "user_id:token\titem_id:token\ttimestamp:float\n1\t1\t5\n", "ml.item": ATOMIC_ITEMS + "1\tAgain\n"},
        ["ml.item:4", "duplicate item '1'"],
    ),
    (LOG_TASK, {"log.jsonl": '{"query": "red lamp"}\n'}, ["log.jsonl:1", "missing 'item_id'"]),
    (LOG_TASK, {"log.jsonl": '{"query": "red lamp", "item_id": "SYN000001"}\n{"query": 7}\n'}, ["log.jsonl:2", "'query'"]),
    (LOG_TASK, {"log.jsonl": b'{"query": "caf\xe9", "item_id": "SYN000001"}\n'}, ["log.jsonl", "not UTF-8"]),
    ("loader: nope\n", {}, ["unknown loader 'nope'"]),
    ("loader: synthetic\nqueries: {protocol: psychic}\n", {}, ["unknown query protocol 'psychic'"]),
    ("loader: synthetic\ncold_start_share: 2\n", {}, ["cold_start_share"]),
    ("loader: synthetic\nmin_sequence_length: 1\n", {}, ["min_sequence_length"]),
    ("loader: synthetic\nmin_sequence_length: three\n", {}, ["min_sequence_length", "expected a number"]),
    ("loader: synthetic\nflavour: mint\n", {}, ["task.yaml", "unknown setting 'flavour'"]),
    ("loader: synthetic\nqueries: [1]\n", {}, ["task.yaml.queries", "expected a mapping"]),
    ("loader: synthetic\noptions: {colour: red}\n", {}, ["synthetic loader", "unknown option 'colour'"]),
]


@pytest.mark.parametrize(("task", "files", "fragments"), SOURCE_CASES)
def test_prepare_refuses_bad_sources(capsys, pipeline, tmp_path, task, files, fragments):
    place = place_for(pipeline, tmp_path)
    source = tmp_path / "source"
    source.mkdir()
    for name, content in files.items():
        (source / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    (tmp_path / "task.yaml").write_text(task.replace("{SOURCE}", str(source)), encoding="utf-8")
    args = ["data", "prepare", str(tmp_path / "task.yaml"), "--data-root", str(source), "--out", "{OUT}"]
    assert_cli_error(capsys, place, args, fragments)


def test_console_script_bad_input_is_one_line_without_traceback(pipeline, tmp_path):
    """The entry point in a process of its own (one case: a process costs seconds of imports): exit 2, one `error:` line."""
    out = tmp_path / "OUT"
    args = ["codes", "train", str(pipeline.dataset), "--learning-rate", "-1", "--out", str(out)]
    result = subprocess.run([sys.executable, "-m", "unisr", *args], capture_output=True, text=True, check=False)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "learning_rate=-1" in lines[0] and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())
