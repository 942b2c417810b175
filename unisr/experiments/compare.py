"""The joint-versus-single-task comparison: every code scheme × decoder × seed, evaluated on both tasks.

A comparison directory holds::

    codes/<scheme>-<quantizer>-s<seed>/           one tokenizer per scheme and seed (cold-start items assigned afterwards)
    runs/<scheme>-<quantizer>-<decoder>-s<seed>/  one decoder run per cell
    cells/<cell>.json                             the metrics of a finished cell (what makes a cell "done")
    baselines/<name>.json                         the metrics of each baseline
    results.json, results.csv, results.md, tradeoff.png

Every piece is written atomically, so an interrupted comparison resumes where it stopped: finished cells
are read back, finished tokenizers and runs are reused, and a half-trained run resumes from its last checkpoint.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from unisr.config import as_json_value, check_types, load_config
from unisr.data.dataset import PreparedDataset
from unisr.decoder.artifact import resume_checkpoint
from unisr.decoder.config import DecoderConfig
from unisr.decoder.retriever import GenerativeRetriever
from unisr.decoder.train import train_decoder
from unisr.embeddings import DEFAULT_MODEL, ensure_embeddings
from unisr.errors import UnisrError
from unisr.evaluation.baselines import BASELINE_TASKS, BASELINES, build_baseline
from unisr.evaluation.evaluator import TaskResult, evaluate_tasks
from unisr.evaluation.metrics import DEFAULT_KS
from unisr.evaluation.rankers import GenerativeRanker
from unisr.io import read_json, write_json, write_json_atomic
from unisr.tokenizer import SCHEMES, TokenizerConfig, assign_codes, train_codes
from unisr.tokenizer.config import semantic_quantizers

DECODERS = {"rec": ("rec",), "search": ("search",), "joint": ("rec", "search")}  # decoder kind → tasks it is trained on
RANDOM = "random"  # scheme and quantizer label of the random-ID baseline
TASK_SCHEME = {"rec": "rec", "search": "search"}  # the single-task code scheme of each task
SETTINGS_CLASSES = {"tokenizer": TokenizerConfig, "decoder": DecoderConfig}  # the two settings a cell records


@dataclass
class CompareConfig:
    schemes: tuple[str, ...] = SCHEMES  # code schemes compared
    quantizers: tuple[str, ...] = ("rqvae",)  # quantizers compared (rqvae, rqkmeans)
    decoders: tuple[str, ...] = ("rec", "search", "joint")  # decoder kinds: trained on rec only, search only, or both
    seeds: tuple[int, ...] = (0, 1, 2)  # each seed trains its own tokenizer and decoders
    random_ids: bool = True  # also train the decoders on random (non-semantic) IDs of the same length
    baselines: tuple[str, ...] = ("popularity", "bm25", "dense")  # add sasrec for the strong (slower) sequential baseline
    tokenizer: str = "tokenizer"  # tokenizer config: a name under configs/ or a YAML path
    decoder: str = "decoder"  # decoder config: a name under configs/ or a YAML path
    tokenizer_overrides: dict = field(default_factory=dict)  # settings applied over the tokenizer config
    decoder_overrides: dict = field(default_factory=dict)  # settings applied over the decoder config
    sasrec: str = "sasrec"  # SASRec config (when sasrec is among the baselines)
    embedding_model: str = DEFAULT_MODEL  # sentence encoder of items and queries
    split: str = "test"  # reported split (checkpoints are selected on valid)
    ks: tuple[int, ...] = DEFAULT_KS  # cut-offs of Recall@K and NDCG@K
    metric: str = "ndcg@10"  # the metric of the plot and of the kept shares
    workers: int = 1  # cells trained at once, each in its own process with cores // workers torch threads (1 = in this process)

    def __post_init__(self):
        check_types(self, "compare setting")
        for name, values, allowed in (
            ("schemes", self.schemes, SCHEMES),
            ("quantizers", self.quantizers, semantic_quantizers()),
            ("decoders", self.decoders, tuple(DECODERS)),
            ("baselines", self.baselines, BASELINES),
        ):
            values = tuple(values)
            setattr(self, name, values)
            unknown = [value for value in values if value not in allowed]
            if unknown:
                raise UnisrError(f"compare setting {name}: {unknown[0]!r} is not one of {', '.join(allowed)}")
        self.seeds, self.ks = tuple(int(seed) for seed in self.seeds), tuple(int(k) for k in self.ks)
        if not self.seeds or not self.decoders or not (self.schemes or self.random_ids):
            raise UnisrError("compare needs at least one seed, one decoder and one scheme (or random IDs)")
        if not self.ks or min(self.ks) < 1:
            raise UnisrError(f"compare setting ks={list(self.ks)}: give one or more positive cut-offs such as [5, 10, 20]")
        if self.workers < 1:
            raise UnisrError(f"compare setting workers={self.workers}: must be at least 1 (1 = one cell at a time, in this process)")
        if self.split not in ("valid", "test"):
            raise UnisrError(f"compare setting split={self.split!r}: choose valid or test")
        names = [f"{prefix}@{k}" for k in self.ks for prefix in ("recall", "ndcg")]
        if self.metric not in names:
            raise UnisrError(f"compare setting metric={self.metric!r}: choose one of {', '.join(names)}")

    def check_cell_settings(self) -> None:
        """Build the tokenizer and decoder settings of the first cell, so a bad config or override fails before anything is written."""
        for name, overrides in (("tokenizer_overrides", self.tokenizer_overrides), ("decoder_overrides", self.decoder_overrides)):
            if any(not isinstance(key, str) for key in overrides):
                raise UnisrError(f"compare setting {name}: keys must be setting names, got {sorted(map(repr, overrides))}")
        scheme = self.schemes[0] if self.schemes else "content"
        quantizer = self.quantizers[0] if self.quantizers else RANDOM
        load_config(TokenizerConfig, self.tokenizer, **{**self.tokenizer_overrides, "scheme": scheme, "quantizer": quantizer})
        load_config(DecoderConfig, self.decoder, **{**self.decoder_overrides, "tasks": DECODERS[self.decoders[0]]})


class Cell(NamedTuple):
    scheme: str  # content | search | rec | joint | random
    quantizer: str  # rqvae | rqkmeans | random
    decoder: str  # rec | search | joint
    seed: int

    @property
    def codes_name(self) -> str:
        return f"{self.scheme}-{self.quantizer}-s{self.seed}"

    @property
    def name(self) -> str:
        return f"{self.scheme}-{self.quantizer}-{self.decoder}-s{self.seed}"


def plan_cells(config: CompareConfig) -> list[Cell]:
    """Cells in the order they run: seed by seed, so a partial comparison already covers every scheme."""
    codes = [(scheme, quantizer) for quantizer in config.quantizers for scheme in config.schemes]
    if config.random_ids:
        codes.append((RANDOM, RANDOM))
    return [Cell(scheme, quantizer, decoder, seed) for seed in config.seeds for scheme, quantizer in codes for decoder in config.decoders]


def codes_directory(out: Path, cell: Cell) -> Path:
    return Path(out) / "codes" / cell.codes_name


def run_directory(out: Path, cell: Cell) -> Path:
    return Path(out) / "runs" / cell.name


class CompareResult(NamedTuple):
    directory: Path
    results: dict  # what results.json holds
    markdown: str  # the tables of results.md
    plot: Path | None  # tradeoff.png (None when no decoder covers both tasks)


def _task_results_to_json(results: dict[str, TaskResult]) -> dict:
    return {task: result._asdict() for task, result in results.items()}


class Comparison:
    """Runs (or resumes) the cells of ``config`` on a prepared, embedded dataset under ``out``."""

    def __init__(self, dataset_dir: Path, out: Path, config: CompareConfig, report: Callable[[str], None] | None = None):
        self.dataset_dir, self.out, self.config = Path(dataset_dir), Path(out), config
        self.report = report or (lambda message: None)
        self.dataset = PreparedDataset.load(self.dataset_dir)

    def tokenizer_config(self, cell: Cell) -> TokenizerConfig:
        overrides = dict(self.config.tokenizer_overrides)
        scheme = "content" if cell.scheme == RANDOM else cell.scheme
        overrides.update(scheme=scheme, quantizer=cell.quantizer, seed=cell.seed, progress=False)
        return load_config(TokenizerConfig, self.config.tokenizer, **overrides)

    def decoder_config(self, cell: Cell) -> DecoderConfig:
        """The decoder settings of ``cell``; a search-only decoder sees as many search examples per epoch as the joint one."""
        overrides = dict(self.config.decoder_overrides)
        overrides.update(tasks=DECODERS[cell.decoder], seed=cell.seed, progress=False)
        config = load_config(DecoderConfig, self.config.decoder, **overrides)
        if cell.decoder == "search" and not config.examples_per_epoch and 0 < config.search_share < 1:
            # the joint decoder draws rec_examples × share / (1 - share) search examples per epoch (module.training_batches)
            rec_examples = sum(max(0, len(split.train) - 1) for split in self.dataset.splits)
            config.examples_per_epoch = round(rec_examples * config.search_share / (1 - config.search_share))
        return config

    def settings(self, cell: Cell) -> dict:
        """The tokenizer and decoder settings of ``cell`` (a finished cell must have been run with the same)."""
        tokenizer = dataclasses.asdict(self.tokenizer_config(cell))
        decoder = dataclasses.asdict(self.decoder_config(cell))
        return {"tokenizer": tokenizer, "decoder": {**decoder, "tasks": list(decoder["tasks"])}}

    def _check_settings(self, path: Path, held: dict, wanted: dict, part: str, what: str) -> None:
        """Refuse an artifact made with other ``part`` settings (a setting it predates counts as its default)."""
        ignored = {"progress", "threads"}
        if wanted.get("guidance_grid"):  # a run stores the guidance weights its training chose on validation
            ignored |= {"guidance_rec", "guidance_search", "guidance_prior_rec", "guidance_prior_search"}
        defaults = dataclasses.asdict(SETTINGS_CLASSES[part]())
        held = {key: as_json_value(held.get(key, defaults.get(key))) for key in set(held) | set(wanted)}
        wanted = {key: as_json_value(value) for key, value in wanted.items()}
        changed = sorted(key for key in held if key not in ignored and held[key] != wanted.get(key))
        if changed:
            raise UnisrError(
                f"{path}: {what} was made with other settings ({changed[0]}: {held.get(changed[0])!r}, now {wanted.get(changed[0])!r}); "
                "use another --out, or delete it to recompute"
            )

    def ensure_codes(self, cell: Cell, settings: dict) -> tuple[Path, float]:
        """The cell's codes directory (trained if missing); cold-start items get IDs from the frozen tokenizer."""
        directory = codes_directory(self.out, cell)
        started = time.perf_counter()
        if (directory / "manifest.json").is_file():
            self._check_settings(directory, read_json(directory / "config.json"), settings["tokenizer"], "tokenizer", "this tokenizer")
        else:
            train_codes(self.dataset_dir, self.tokenizer_config(cell), directory, self.config.embedding_model, overwrite=True)
        if self.dataset.cold_start_items:
            assign_codes(directory, self.dataset_dir, sorted(self.dataset.cold_start_items))  # no-op when already assigned
        return directory, time.perf_counter() - started

    def ensure_run(self, cell: Cell, codes_dir: Path, settings: dict) -> tuple[Path, float]:
        directory = run_directory(self.out, cell)
        if (directory / "manifest.json").is_file():
            held = read_json(directory / "config.json")
            self._check_settings(directory, held, settings["decoder"], "decoder", "this run")
            return directory, 0.0
        started = time.perf_counter()
        resume = resume_checkpoint(directory).is_file()
        train_decoder(self.dataset_dir, codes_dir, self.decoder_config(cell), directory, overwrite=True, resume=resume)
        return directory, time.perf_counter() - started

    def run_cell(self, cell: Cell) -> dict:
        path = self.out / "cells" / f"{cell.name}.json"
        settings = self.settings(cell)
        if path.is_file():
            held = read_json(path)
            for part in ("tokenizer", "decoder"):
                self._check_settings(path, held["settings"][part], settings[part], part, "this cell")
            return held
        codes_dir, codes_seconds = self.ensure_codes(cell, settings)
        run_dir, train_seconds = self.ensure_run(cell, codes_dir, settings)
        evaluate_started = time.perf_counter()
        retriever = GenerativeRetriever.load(run_dir, self.dataset_dir, codes_dir)
        results = evaluate_tasks(GenerativeRanker(retriever), self.dataset, DECODERS[cell.decoder], self.config.split, self.config.ks)
        value = {
            **cell._asdict(),
            "name": cell.name,
            "results": _task_results_to_json(results),
            "health": read_json(codes_dir / "health.json"),
            "best_validation": retriever.manifest.get("best_validation"),
            "epochs_run": retriever.manifest.get("epochs_run"),
            "settings": settings,
            "seconds": {
                "codes": round(codes_seconds, 1),
                "train": round(train_seconds, 1),
                "evaluate": round(time.perf_counter() - evaluate_started, 1),
            },
        }
        write_json_atomic(path, value)
        return value

    def run_baseline(self, name: str) -> dict:
        path = self.out / "baselines" / f"{name}.json"
        if path.is_file():
            return read_json(path)
        started = time.perf_counter()
        baseline = build_baseline(name, self.dataset, self.config.sasrec)
        results = evaluate_tasks(baseline.ranker, self.dataset, baseline.tasks, self.config.split, self.config.ks)
        value = {"name": name, "results": _task_results_to_json(results), "seconds": round(time.perf_counter() - started, 1)}
        write_json_atomic(path, value)
        return value

    def _report_cell(self, index: int, total: int, value: dict) -> dict:
        spent = sum(value["seconds"].values())
        metric = self.config.metric
        metrics = "  ".join(f"{task} {metric} {result['metrics'][metric]:.4f}" for task, result in value["results"].items())
        self.report(f"[{index}/{total}] {value['name']}: {metrics}  ({spent:.0f} s)")
        return value

    def _run_in_workers(self, pending: list[tuple[int, Cell]], total: int) -> dict[Cell, dict]:
        """Run ``pending`` cells in ``workers`` processes; each cell always gets the same thread count, so results do not
        depend on which cells run side by side. Codes are trained first (here), as several cells share them."""
        workers = min(self.config.workers, len(pending))
        threads = max(1, (os.cpu_count() or 1) // self.config.workers)
        for codes_cell in {cell._replace(decoder=self.config.decoders[0]): None for _, cell in pending}:
            self.ensure_codes(codes_cell, self.settings(codes_cell))
        self.report(f"{len(pending)} cells in {workers} processes, {threads} torch thread(s) each")
        done = {}
        context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch thread pools
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(threads,)) as pool:
            jobs = {
                pool.submit(_run_cell_in_worker, self.dataset_dir, self.out, self.config, cell): (index, cell) for index, cell in pending
            }
            for job in concurrent.futures.as_completed(jobs):
                index, cell = jobs[job]
                done[cell] = self._report_cell(index, total, job.result())
        return done

    def run(self) -> CompareResult:
        from unisr.experiments.report import write_report  # matplotlib is imported only when a report is written

        ensure_embeddings(self.dataset_dir, self.config.embedding_model, progress=False)
        baselines = {}
        for name in self.config.baselines:
            done = (self.out / "baselines" / f"{name}.json").is_file()
            self.report(f"baseline {name}: {'done, read back' if done else 'evaluating'}")
            baselines[name] = self.run_baseline(name)
        cells = plan_cells(self.config)
        finished = {}
        pending = []
        for index, cell in enumerate(cells, 1):
            if (self.out / "cells" / f"{cell.name}.json").is_file():
                self.report(f"[{index}/{len(cells)}] {cell.name}: done, read back")
                finished[cell] = self.run_cell(cell)
            else:
                pending.append((index, cell))
        if self.config.workers > 1 and pending:  # even one cell: the thread count of a cell must not depend on what else is pending
            finished.update(self._run_in_workers(pending, len(cells)))
        else:
            for index, cell in pending:
                self.report(f"[{index}/{len(cells)}] {cell.name}: training and evaluating")
                finished[cell] = self._report_cell(index, len(cells), self.run_cell(cell))
        finished = [finished[cell] for cell in cells]
        results = summarise(self.dataset, self.config, finished, baselines)
        markdown, plot = write_report(self.out, results)
        return CompareResult(self.out, results, markdown, plot)


def _start_worker(threads: int) -> None:
    """Set up a worker process of :meth:`Comparison._run_in_workers`: ``threads`` torch threads for everything it runs
    (a decoder config's ``threads: 0`` keeps the process's count)."""
    import torch

    torch.set_num_threads(threads)


def _run_cell_in_worker(dataset_dir: Path, out: Path, config: CompareConfig, cell: Cell) -> dict:
    """One cell in a worker process of :meth:`Comparison._run_in_workers`."""
    return Comparison(dataset_dir, out, config).run_cell(cell)


def _mean_std(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0, "n": len(array)}


def aggregate(cells: list[dict]) -> list[dict]:
    """Mean ± std over seeds of every metric (overall and cold start) per scheme × quantizer × decoder."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for cell in cells:
        groups.setdefault((cell["scheme"], cell["quantizer"], cell["decoder"]), []).append(cell)
    rows = []
    for (scheme, quantizer, decoder), members in groups.items():
        tasks = {}
        for task in members[0]["results"]:
            per_seed = [member["results"][task] for member in members]
            metrics = {name: _mean_std([result["metrics"][name] for result in per_seed]) for name in per_seed[0]["metrics"]}
            breakdown = {}
            for group, values in per_seed[0]["breakdown"].items():
                names = [name for name in values if name != "requests"]
                breakdown[group] = {"requests": values["requests"]}
                breakdown[group].update({name: _mean_std([result["breakdown"][group][name] for result in per_seed]) for name in names})
            tasks[task] = {"requests": per_seed[0]["requests"], "metrics": metrics, "breakdown": breakdown}
        seconds = {part: _mean_std([member["seconds"][part] for member in members]) for part in members[0]["seconds"]}
        seeds = sorted(member["seed"] for member in members)
        rows.append({"scheme": scheme, "quantizer": quantizer, "decoder": decoder, "seeds": seeds, "tasks": tasks, "seconds": seconds})
    return rows


def kept_shares(rows: list[dict], metric: str) -> list[dict]:
    """For every scheme × quantizer × decoder and task: its mean ``metric`` over the best single-task result.

    The best single-task result of a task is the best mean among cells whose codes were built for that task
    alone (scheme ``rec`` for recommendation, ``search`` for search; any decoder that does the task), as in
    Penha et al. 2025; where no such cell was run, the best of all cells.
    """
    shares = []
    for task, own_scheme in TASK_SCHEME.items():
        candidates = [row for row in rows if task in row["tasks"]]
        own = [row for row in candidates if row["scheme"] == own_scheme]
        pool = own or candidates
        if not pool:
            continue
        best = max(pool, key=lambda row: row["tasks"][task]["metrics"][metric]["mean"])
        reference = best["tasks"][task]["metrics"][metric]["mean"]
        for row in candidates:
            value = row["tasks"][task]["metrics"][metric]["mean"]
            shares.append(
                {
                    "scheme": row["scheme"],
                    "quantizer": row["quantizer"],
                    "decoder": row["decoder"],
                    "task": task,
                    "value": value,
                    "reference": reference,
                    "reference_cell": f"{best['scheme']}-{best['quantizer']}-{best['decoder']}",
                    "share": value / reference if reference > 0 else float("nan"),
                }
            )
    return shares


def summarise(dataset: PreparedDataset, config: CompareConfig, cells: list[dict], baselines: dict[str, dict]) -> dict:
    rows = aggregate(cells)
    return {
        "dataset": {"name": dataset.name, "fingerprint": dataset.fingerprint, "directory": str(dataset.root)},
        "config": dataclasses.asdict(config),
        "metric": config.metric,
        "split": config.split,
        "cells": cells,
        "aggregate": rows,
        "kept_shares": kept_shares(rows, config.metric),
        "baselines": baselines,
        "baseline_tasks": {name: list(BASELINE_TASKS[name]) for name in baselines},
    }


def run_comparison(
    dataset_dir: str | Path, out: str | Path, config: CompareConfig = CompareConfig(), report: Callable[[str], None] | None = None
) -> CompareResult:
    """Run (or resume) the comparison of ``config`` on a prepared dataset; see the module docstring for the outputs."""
    out = Path(out)
    config.check_cell_settings()
    dataset = PreparedDataset.load(dataset_dir)
    marker = out / "comparison.json"
    if marker.is_file():
        held = read_json(marker)
        if held.get("dataset_fingerprint") != dataset.fingerprint:
            raise UnisrError(f"{out}: holds a comparison on dataset {held.get('dataset_name')!r}, not {dataset_dir} (choose another --out)")
    else:
        out.mkdir(parents=True, exist_ok=True)
        write_json(marker, {"dataset_fingerprint": dataset.fingerprint, "dataset_name": dataset.name})
    return Comparison(Path(dataset_dir), out, config, report).run()
