"""Python API: everything the CLI does, as functions (the CLI only parses options and prints)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from unisr.config import load_config
from unisr.data import PreparedDataset, dataset_stats, load_task, prepare
from unisr.data.dataset import read_query_file
from unisr.data.queries.probe import ProbeConfig
from unisr.data.queries.probe import probe_queries as make_probe_queries
from unisr.data.schema import Query
from unisr.data.stats import DatasetStats
from unisr.data.tasks import DEFAULT_TASK, resolve_data_root
from unisr.decoder.config import GUIDANCE_PRIORS, DecoderConfig
from unisr.decoder.guidance import Guidance
from unisr.decoder.retriever import GenerativeRetriever, Retrieved
from unisr.decoder.train import RunResult, train_decoder
from unisr.defaults import (
    DEFAULT_COMPARE_CONFIG,
    DEFAULT_COMPARISONS_DIR,
    DEFAULT_DECODER_CONFIG,
    DEFAULT_PREPARED_DIR,
    DEFAULT_QUICKSTART_DIR,
    DEFAULT_TOKENIZER_CONFIG,
    QUICKSTART_COMPARE_CONFIG,
)
from unisr.embeddings import DEFAULT_MODEL, EmbedConfig, EmbedResult, embed_dataset
from unisr.errors import UnisrError
from unisr.evaluation import DEFAULT_KS, TASKS, EvalRequest, GenerativeRanker, TaskResult, evaluate_tasks
from unisr.evaluation.baselines import BASELINES, Baseline, build_baseline
from unisr.evaluation.rankers import FusedRanker
from unisr.experiments.compare import Cell, CompareConfig, CompareResult, run_comparison, run_directory
from unisr.io import atomic_write_bytes, read_json
from unisr.tokenizer import AssignResult, CodesResult, SemanticTokenizer, TokenizerConfig, assign_codes
from unisr.tokenizer import train_codes as _train_codes
from unisr.tokenizer.health import HealthReport, report_from_dict
from unisr.tokenizer.inspect import CodesInspection, inspect_codes
from unisr.validate import (
    AT_LEAST_0,
    check_bool,
    check_choice,
    check_choices,
    check_instance,
    check_int,
    check_k,
    check_optional_bool,
    check_optional_number,
    check_optional_path,
    check_optional_text,
    check_path,
    check_text,
    check_texts,
    is_integer,
)

QUICKSTART_EXAMPLES = 3  # example searches and users shown by the quickstart
QUICKSTART_K = 5  # results shown per example


def prepare_dataset(
    task: str,
    out: str | Path | None = None,
    data_root: str | Path | None = None,
    overwrite: bool = False,
    cold_start: bool | None = None,
) -> PreparedDataset:
    """Prepare ``task`` (a name under tasks/ or a YAML path) into ``out`` (default ``prepared/<task>``)."""
    task = check_text(str(task) if isinstance(task, Path) else task, "task", "task name or YAML path")
    out, data_root = check_optional_path(out, "out"), check_optional_path(data_root, "data_root")
    overwrite, cold_start = check_bool(overwrite, "overwrite"), check_optional_bool(cold_start, "cold_start")
    config = load_task(task)
    if cold_start is not None:
        config = dataclasses.replace(config, cold_start=cold_start)
    target = Path(out) if out is not None else DEFAULT_PREPARED_DIR / config.name
    return prepare(config, target, resolve_data_root(data_root), overwrite=overwrite)


def load_dataset(path: str | Path, verify: bool = False) -> PreparedDataset:
    return PreparedDataset.load(check_path(path, "path"), verify=check_bool(verify, "verify"))


def stats(path: str | Path) -> DatasetStats:
    return dataset_stats(PreparedDataset.load(check_path(path, "path")))


def embed(path: str | Path, config: EmbedConfig = EmbedConfig()) -> EmbedResult:
    return embed_dataset(check_path(path, "path"), check_instance(config, "config", EmbedConfig))


def _config_source(config: str | Path | None) -> str | Path | None:
    """The ``config`` argument of the *_config functions: None, a name under configs/ or a YAML path."""
    if config is None or (isinstance(config, str) and config.strip()):
        return config
    return check_path(config, "config")


def tokenizer_config(config: str | Path | None = DEFAULT_TOKENIZER_CONFIG, **overrides) -> TokenizerConfig:
    """TokenizerConfig from defaults, a YAML (name under configs/ or path) and non-None overrides."""
    return load_config(TokenizerConfig, _config_source(config), **overrides)


def train_codes(
    dataset_dir: str | Path,
    config: TokenizerConfig | None = None,
    out: str | Path | None = None,
    embedding_model: str = DEFAULT_MODEL,
    overwrite: bool = False,
) -> CodesResult | None:
    """Train semantic IDs (default: configs/tokenizer.yaml, joint scheme, RQ-VAE) and write a codes directory."""
    dataset_dir, out = check_path(dataset_dir, "dataset_dir"), check_optional_path(out, "out")
    config = check_instance(config, "config", TokenizerConfig, optional=True)
    embedding_model = check_text(embedding_model, "embedding_model", "model name or directory")
    return _train_codes(dataset_dir, config or tokenizer_config(), out, embedding_model, check_bool(overwrite, "overwrite"))


def load_codes(codes_dir: str | Path, dataset_dir: str | Path | None = None) -> SemanticTokenizer:
    """A trained tokenizer with its ID table; with ``dataset_dir``, refuses codes of another dataset."""
    codes_dir, dataset_dir = check_path(codes_dir, "codes_dir"), check_optional_path(dataset_dir, "dataset_dir")
    return SemanticTokenizer.load(codes_dir, PreparedDataset.load(dataset_dir) if dataset_dir else None)


def inspect(codes_dir: str | Path, dataset_dir: str | Path | None = None, examples: int = 3) -> CodesInspection:
    """Health report, largest collision groups and prefix neighbours (with titles from the dataset)."""
    codes_dir, dataset_dir = check_path(codes_dir, "codes_dir"), check_optional_path(dataset_dir, "dataset_dir")
    examples = check_int(examples, "examples", AT_LEAST_0)
    tokenizer = SemanticTokenizer.load(codes_dir)
    dataset_dir = dataset_dir or tokenizer.manifest.get("dataset_dir")
    catalog = None
    if dataset_dir and (Path(dataset_dir) / "manifest.json").is_file():
        dataset = PreparedDataset.load(dataset_dir)
        tokenizer.check_dataset(dataset)
        catalog = dataset.catalog
    return inspect_codes(tokenizer, read_json(Path(codes_dir) / "health.json"), catalog, examples=examples)


def assign(
    codes_dir: str | Path, dataset_dir: str | Path | None = None, item_ids: list[str] | None = None, progress: bool = False
) -> AssignResult:
    """IDs for catalog items that have none (e.g. cold-start items), with the frozen tokenizer (embeddings read in chunks)."""
    codes_dir, dataset_dir = check_path(codes_dir, "codes_dir"), check_optional_path(dataset_dir, "dataset_dir")
    item_ids = None if item_ids is None else check_texts(item_ids, "item_ids", allow_empty=False)
    dataset_dir = dataset_dir or SemanticTokenizer.load(codes_dir).manifest["dataset_dir"]
    return assign_codes(codes_dir, dataset_dir, item_ids, progress=check_bool(progress, "progress"))


def decoder_config(config: str | Path | None = DEFAULT_DECODER_CONFIG, **overrides) -> DecoderConfig:
    """DecoderConfig from defaults, a YAML (name under configs/ or path) and non-None overrides."""
    return load_config(DecoderConfig, _config_source(config), **overrides)


def train(
    dataset_dir: str | Path,
    codes_dir: str | Path,
    config: DecoderConfig | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> RunResult | None:
    """Train one decoder for the tasks of ``config`` (default: rec and search, configs/decoder.yaml)."""
    dataset_dir, codes_dir = check_path(dataset_dir, "dataset_dir"), check_path(codes_dir, "codes_dir")
    config, out = check_instance(config, "config", DecoderConfig, optional=True), check_optional_path(out, "out")
    overwrite, resume = check_bool(overwrite, "overwrite"), check_bool(resume, "resume")
    return train_decoder(dataset_dir, codes_dir, config or decoder_config(), out, overwrite, resume)


def load(
    run_dir: str | Path,
    dataset_dir: str | Path | None = None,
    codes_dir: str | Path | None = None,
    guidance: Guidance | None = None,
) -> GenerativeRetriever:
    """A trained run with ``.recommend(history=... | user=..., k=10)`` and ``.search(query, k=10, user=None)``.

    ``guidance`` (rec, search weights) replaces the content-guidance weights stored in the run's config.
    """
    run_dir = check_path(run_dir, "run_dir")
    dataset_dir, codes_dir = check_optional_path(dataset_dir, "dataset_dir"), check_optional_path(codes_dir, "codes_dir")
    if guidance is not None:
        if isinstance(guidance, (str, bytes)) or not isinstance(guidance, (tuple, list)) or len(guidance) != 2:
            raise UnisrError(f"guidance: expected (rec, search) weights such as Guidance(rec=1.0, search=2.0), got {guidance!r}")
        weights = zip(Guidance._fields, guidance, strict=True)
        guidance = Guidance(*(check_optional_number(weight, f"guidance.{task}", AT_LEAST_0) for task, weight in weights))
    return GenerativeRetriever.load(run_dir, dataset_dir, codes_dir, guidance)


SPLITS = ("valid", "test")  # the evaluated splits
FUSABLE = ("bm25", "dense")  # baselines a run's ranking can be fused with (hybrid search and recommendation)


def _fusable(name: str, dataset: PreparedDataset) -> Baseline:
    return build_baseline(check_choice(name, "--fuse", FUSABLE), dataset)


def hybrid_search(retriever: GenerativeRetriever, query: str, k: int = 10, fuse: str = "bm25", user: str | None = None) -> list[Retrieved]:
    """Search fusing the run's generative ranking with ``fuse`` (bm25 or dense) by reciprocal rank fusion; score = fused score.

    The other ranker's index is built on each call; for many queries, use ``evaluate_ranker(..., fuse=...)`` or ``FusedRanker``.
    """
    retriever = check_instance(retriever, "retriever", GenerativeRetriever)
    query, k, user = check_text(query, "query", "query"), check_k(k), check_optional_text(user, "user", "user id")
    check_choice(fuse, "--fuse", FUSABLE)
    dataset = retriever.dataset
    history = tuple(retriever.user_history(user)) if user is not None else ()
    request = EvalRequest(history, query, user, ())
    ranked, scores = FusedRanker([GenerativeRanker(retriever), _fusable(fuse, dataset).ranker]).rank_with_scores("search", [request], k)
    table = retriever.tokenizer.table
    results = []
    for row, score in zip(ranked[0].tolist(), scores[0].tolist(), strict=True):
        if row < 0:
            continue
        item = dataset.catalog.items[row]
        semantic_id = tuple(table.semantic_id(item.item_id)) if item.item_id in table else ()
        results.append(Retrieved(len(results) + 1, item.item_id, item.title, float(score), semantic_id))
    return results


def probe_queries(dataset_dir: str | Path, out: str | Path, config: ProbeConfig | None = None) -> list[Query]:
    """Write a probe query set (``leaf_title``: a title word + a leaf category, never a training query text) as JSONL.

    Evaluate a run or a baseline on it with ``evaluate_ranker(..., queries=out)``.
    """
    dataset = PreparedDataset.load(check_path(dataset_dir, "dataset_dir"), lazy=True)  # reads the catalog and the queries only
    out = check_path(out, "out")
    if out.is_dir():
        raise UnisrError(f"out {str(out)!r} is a directory: name the JSONL file to write")
    config = check_instance(config, "config", ProbeConfig, optional=True) or ProbeConfig()
    queries = make_probe_queries(dataset.catalog, (query.text for query in dataset.queries_in("train")), config)
    lines = "".join(json.dumps(query.to_record(), ensure_ascii=False) + "\n" for query in queries)
    atomic_write_bytes(out, lines.encode("utf-8"))
    return queries


def read_queries(path: str | Path, dataset: PreparedDataset) -> list[Query]:
    """The queries of a JSONL file (``probe_queries`` writes one) whose items must be in ``dataset``'s catalog."""
    path = check_path(path, "queries")
    if not path.is_file():
        raise UnisrError(f"queries {str(path)!r}: no such file (write one with `unisr data probe-queries`)")
    return read_query_file(path, dataset.catalog, fix="give a query file made for this dataset")


def evaluate_ranker(
    dataset_dir: str | Path,
    run_dir: str | Path | None = None,
    baseline: str | None = None,
    tasks: tuple[str, ...] = ("rec", "search"),
    split: str = "test",
    ks: tuple[int, ...] = DEFAULT_KS,
    sasrec_config: str | Path | None = "sasrec",
    guidance_rec: float | None = None,
    guidance_search: float | None = None,
    fuse: str | None = None,
    cold_share: float | None = None,
    queries: str | Path | None = None,
    guidance_prior: str | None = None,
) -> dict[str, TaskResult]:
    """Full-ranking metrics of a trained run or of a baseline, per task (tasks without requests are left out).

    ``queries`` names a JSONL query file (e.g. from ``probe_queries``) whose ``split`` queries replace the dataset's search queries.
    ``guidance_rec`` / ``guidance_search`` replace the run's content-guidance weights, ``guidance_prior`` the prior they weight
    (``codes``, ``items`` or ``both``; None keeps the run's; a run only).
    ``cold_share`` replaces the run's share of recommendation ranks kept for cold items (None keeps it; a run only).
    ``fuse`` names a baseline whose ranking is fused with the run's by reciprocal rank fusion (the hybrid; a run only).
    """
    dataset_dir, run_dir = check_path(dataset_dir, "dataset_dir"), check_optional_path(run_dir, "run_dir")
    if (run_dir is None) == (baseline is None):
        raise UnisrError("evaluate needs exactly one of --run RUN_DIR or --baseline NAME")
    split = check_choice(split, "split", SPLITS)
    tasks = check_choices(tasks, "task", TASKS)
    if not isinstance(ks, (tuple, list)) or not ks or not all(is_integer(k) and k >= 1 for k in ks):
        raise UnisrError(f"cut-offs {ks!r}: give one or more positive integers such as (5, 10, 20)")
    ks = tuple(int(k) for k in ks)
    sasrec_config = None if sasrec_config is None else _config_source(sasrec_config)
    guidance_rec = check_optional_number(guidance_rec, "guidance_rec", AT_LEAST_0)
    guidance_search = check_optional_number(guidance_search, "guidance_search", AT_LEAST_0)
    cold_share = check_optional_number(cold_share, "cold_share")
    fuse = None if fuse is None else check_choice(fuse, "--fuse", FUSABLE)
    guidance_prior = None if guidance_prior is None else check_choice(guidance_prior, "--guidance-prior", GUIDANCE_PRIORS)
    dataset = PreparedDataset.load(dataset_dir)
    search_queries = None if queries is None else read_queries(queries, dataset)
    if run_dir is not None:
        retriever = load(run_dir, dataset_dir).with_guidance(guidance_rec, guidance_search, guidance_prior).with_cold_share(cold_share)
        generative = GenerativeRanker(retriever)
        tasks = tuple(task for task in tasks if task in generative.retriever.config.tasks)
        ranker = generative
        if fuse is not None:
            other = _fusable(fuse, dataset)
            ranker, tasks = FusedRanker([generative, other.ranker]), tuple(task for task in tasks if task in other.tasks)
    else:
        if any(setting is not None for setting in (guidance_rec, guidance_search, guidance_prior, fuse, cold_share)):
            raise UnisrError("guidance settings, --fuse and --cold-share apply to a run (--run), not to a baseline")
        check_choice(baseline, "--baseline", BASELINES)
        chosen = build_baseline(baseline, dataset, sasrec_config)
        ranker, tasks = chosen.ranker, tuple(task for task in tasks if task in chosen.tasks)
    return evaluate_tasks(ranker, dataset, tasks, split, ks, search_queries)


def compare_config(config: str | Path | None = DEFAULT_COMPARE_CONFIG, **overrides) -> CompareConfig:
    """CompareConfig from defaults, a YAML (name under configs/ or path) and non-None overrides."""
    return load_config(CompareConfig, _config_source(config), **overrides)


def compare(
    task_or_dataset: str | Path,
    out: str | Path | None = None,
    config: CompareConfig | None = None,
    data_root: str | Path | None = None,
    cold_start: bool = True,
    report: Callable[[str], None] | None = None,
) -> CompareResult:
    """Codes of every scheme × decoders rec-only / search-only / joint × seeds, on both tasks, beside the baselines.

    ``task_or_dataset`` is a prepared dataset directory, or a task, prepared under ``out/dataset`` (with the
    cold-start hold-out unless ``cold_start=False``). Finished cells under ``out`` are read back, not recomputed.
    """
    source, out = check_path(task_or_dataset, "task_or_dataset"), check_optional_path(out, "out")
    config = check_instance(config, "config", CompareConfig, optional=True) or compare_config()
    data_root, cold_start = check_optional_path(data_root, "data_root"), check_bool(cold_start, "cold_start")
    if report is not None and not callable(report):
        raise UnisrError(f"report: expected a function taking one line of text, got {report!r}")
    config.check_cell_settings()  # a bad setting fails before a dataset is prepared under ``out``
    if (source / "manifest.json").is_file():
        dataset = PreparedDataset.load(source)
        out = Path(out) if out is not None else DEFAULT_COMPARISONS_DIR / dataset.name
    else:
        task = load_task(str(task_or_dataset))
        out = Path(out) if out is not None else DEFAULT_COMPARISONS_DIR / task.name
        target = out / "dataset"
        if (target / "manifest.json").is_file():
            dataset = PreparedDataset.load(target)
        else:
            dataset = prepare_dataset(str(task_or_dataset), target, data_root, cold_start=cold_start)
    return run_comparison(dataset.root, out, config, report)


class QuickstartResult(NamedTuple):
    dataset: PreparedDataset
    stats: DatasetStats
    embeddings: EmbedResult
    health: dict[str, HealthReport]  # code scheme → health of its semantic IDs (seed 0)
    comparison: CompareResult  # every scheme × decoder on both tasks, beside the baselines
    run_dir: Path  # the joint decoder on the joint codes, used for the examples
    searches: dict[str, list[Retrieved]]  # a few example queries → results
    recommendations: dict[str, list[Retrieved]]  # a few example users → results


def quickstart(
    workdir: str | Path = DEFAULT_QUICKSTART_DIR, embed_config: EmbedConfig = EmbedConfig(), report: Callable[[str], None] | None = None
) -> QuickstartResult:
    """On the default (synthetic, no download) task under ``workdir``: prepare, embed, then the small comparison.

    The comparison (configs/compare-small.yaml) trains the codes of every scheme and random IDs, one joint
    decoder on each, and evaluates them on both tasks beside popularity, BM25 and dense retrieval.
    """
    workdir, embed_config = check_path(workdir, "workdir"), check_instance(embed_config, "embed_config", EmbedConfig)
    if report is not None and not callable(report):
        raise UnisrError(f"report: expected a function taking one line of text, got {report!r}")
    target = workdir / DEFAULT_TASK
    held = PreparedDataset.load(target) if (target / "manifest.json").is_file() else None
    if held is None or held.name != DEFAULT_TASK or not held.cold_start_items:
        prepare_dataset(DEFAULT_TASK, target, overwrite=held is not None, cold_start=True)
    dataset = PreparedDataset.load(target)
    embedded = embed_dataset(target, embed_config)
    config = compare_config(QUICKSTART_COMPARE_CONFIG, embedding_model=embed_config.model)
    comparison = run_comparison(target, workdir / "comparison", config, report)
    seed = config.seeds[0]
    first_decoder = config.decoders[0]
    health = {
        cell["scheme"]: report_from_dict(cell["health"])
        for cell in comparison.results["cells"]
        if cell["seed"] == seed and cell["decoder"] == first_decoder
    }
    run_dir = run_directory(comparison.directory, Cell("joint", config.quantizers[0], "joint", seed))
    retriever = load(run_dir, target)
    test_queries = dataset.queries_in("test")[:QUICKSTART_EXAMPLES]
    searches = {query.text: retriever.search(query.text, k=QUICKSTART_K) for query in test_queries}
    users = [split.user_id for split in dataset.splits[:QUICKSTART_EXAMPLES]]
    recommendations = {user: retriever.recommend(user=user, k=QUICKSTART_K) for user in users}
    return QuickstartResult(dataset, dataset_stats(dataset), embedded, health, comparison, run_dir, searches, recommendations)
