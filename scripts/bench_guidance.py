"""Content guidance of beam search: choose its weight on validation, then report test beside the pure decoder.

Usage (from the repository root; results land in BENCHMARKS.md by hand):

    python scripts/bench_guidance.py runs/beauty-run-A --tasks rec --json runs/bench-guidance-beauty.json
    python scripts/bench_guidance.py RUN --weights 0,1 --valid-requests 20 --test-requests 20  # smoke
    python scripts/bench_guidance.py RUN --prior items  # the exact item prior instead of the run's

For each task of the run, every weight of ``--weights`` is evaluated on a seeded subsample of the validation
requests (``--valid-requests``); the weight with the best validation NDCG@10 is then evaluated on the test
split together with weight 0 (the pure decoder), full ranking, with head/torso/tail (and cold-start) breakdowns.
Test numbers never feed the choice.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Annotated

import typer

from unisr.data.dataset import PreparedDataset
from unisr.decoder.config import DecoderConfig
from unisr.decoder.retriever import GenerativeRetriever
from unisr.evaluation import GenerativeRanker, evaluate
from unisr.evaluation.requests import TaskRequests, task_requests

SELECTION_METRIC = "ndcg@10"
DEFAULT_GRID = ",".join(f"{weight:g}" for weight in DecoderConfig().guidance_grid)  # the grid training sweeps

app = typer.Typer(add_completion=False)


def subsample(requests: TaskRequests, count: int, seed: int) -> TaskRequests:
    """A seeded subsample of ``count`` requests (all of them when count is 0 or larger than the split)."""
    if count <= 0 or count >= len(requests.requests):
        return requests
    rows = sorted(random.Random(seed).sample(range(len(requests.requests)), count))
    return TaskRequests(requests.task, requests.split, [requests.requests[row] for row in rows])


def guided(retriever: GenerativeRetriever, task: str, weight: float) -> GenerativeRanker:
    """The retriever with ``task``'s guidance weight set (the other task's is kept)."""
    return GenerativeRanker(retriever.with_guidance(**{task: weight}))


@app.command()
def main(
    run: Annotated[Path, typer.Argument(help="A trained run directory.")],
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks among the run's: rec, search.")] = "rec,search",
    weights: Annotated[str, typer.Option(help="Comma-separated guidance weights tried on validation (0 = pure decoder).")] = DEFAULT_GRID,
    valid_requests: Annotated[int, typer.Option(help="Validation requests per task (seeded subsample; 0 = all).")] = 3000,
    test_requests: Annotated[int, typer.Option(help="Test requests per task (seeded subsample; 0 = all).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the subsamples.")] = 0,
    prior: Annotated[str | None, typer.Option(help="Content prior to weight: codes or items (default: the run's).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
):
    """Validation sweep of the guidance weight per task, then test of the chosen weight and of the pure decoder."""
    grid = [float(part) for part in weights.split(",") if part.strip()]
    if not grid or min(grid) < 0:
        raise typer.BadParameter(f"--weights {weights!r}: expected comma-separated weights ≥ 0")
    retriever = GenerativeRetriever.load(run).with_guidance(prior=prior)
    dataset: PreparedDataset = retriever.dataset
    report: dict[str, dict] = {
        "run": str(run),
        "priors": retriever.guidance_priors,
        "weights": grid,
        "valid_requests": valid_requests,
        "tasks": {},
    }
    for task in [part.strip() for part in tasks.split(",") if part.strip()]:
        if task not in retriever.config.tasks:
            typer.echo(f"{task}: the run was not trained on it; skipped")
            continue
        valid = subsample(task_requests(dataset, task, "valid"), valid_requests, seed)
        sweep = {}
        for weight in grid:
            started = time.perf_counter()
            result = evaluate(guided(retriever, task, weight), dataset, valid)
            sweep[weight] = {"metrics": result.metrics, "seconds": round(time.perf_counter() - started, 1)}
            typer.echo(f"{task} valid ({result.requests:,})  weight {weight:g}  {SELECTION_METRIC} {result.metrics[SELECTION_METRIC]:.4f}")
        chosen = max(grid, key=lambda weight: (sweep[weight]["metrics"][SELECTION_METRIC], -weight))
        test = subsample(task_requests(dataset, task, "test"), test_requests, seed)
        tested = {}
        for weight in sorted({0.0, chosen}):
            result = evaluate(guided(retriever, task, weight), dataset, test)
            tested[weight] = {"metrics": result.metrics, "breakdown": result.breakdown, "requests": result.requests}
            metrics = "  ".join(f"{name} {value:.4f}" for name, value in result.metrics.items())
            typer.echo(f"{task} test ({result.requests:,})  weight {weight:g}  {metrics}")
        report["tasks"][task] = {"valid": sweep, "chosen": chosen, "test": tested}
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    app()
