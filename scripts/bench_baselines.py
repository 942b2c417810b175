"""Baselines under the one evaluator: popularity, BM25, dense and SASRec, per task, with wall times.

Usage (from the repository root; results land in BENCHMARKS.md by hand):

    python scripts/bench_baselines.py --task scientific --task beauty --out runs/bench-baselines

Prepares and embeds each task when needed (``<out>/<task>``), then evaluates every baseline on the
test split of both tasks (SASRec and popularity on recommendation, BM25 on search, popularity and
dense on both) and writes ``<out>/results.json`` plus a markdown table. Finished cells are skipped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from unisr import api
from unisr.embeddings import ensure_embeddings

app = typer.Typer(add_completion=False)
REPORTED = ("recall@5", "ndcg@5", "recall@10", "ndcg@10", "recall@20", "ndcg@20")


@app.command()
def main(
    task: Annotated[list[str], typer.Option(help="Tasks (repeat).")] = ["scientific"],
    baseline: Annotated[list[str], typer.Option(help="Baselines (repeat).")] = list(api.BASELINES),
    out: Annotated[Path, typer.Option(help="Working directory and results.json.")] = Path("runs/bench-baselines"),
    data_root: Annotated[Path | None, typer.Option(help="Source data root.")] = None,
    sasrec_config: Annotated[str, typer.Option(help="SASRec config name or path (when sasrec is among the baselines).")] = "sasrec",
):
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for task_name in task:
        dataset_dir = out / task_name
        if not (dataset_dir / "manifest.json").is_file():
            api.prepare_dataset(task_name, dataset_dir, data_root)
        ensure_embeddings(dataset_dir, progress=False)
        for name in baseline:
            key = f"{task_name}/{name}"
            if key in results:
                continue
            started = time.perf_counter()
            evaluated = api.evaluate_ranker(dataset_dir, baseline=name, sasrec_config=sasrec_config)
            results[key] = {
                "task": task_name,
                "baseline": name,
                "wall_seconds": round(time.perf_counter() - started, 1),
                "results": {kind: result._asdict() for kind, result in evaluated.items()},
            }
            results_path.write_text(json.dumps(results, indent=2))
            typer.echo(f"{key}: {results[key]['wall_seconds']} s")
    typer.echo("| task | baseline | kind | requests | " + " | ".join(REPORTED) + " | wall s |")
    typer.echo("|" + "---|" * (len(REPORTED) + 5))
    for cell in results.values():
        for kind, result in cell["results"].items():
            values = " | ".join(f"{result['metrics'][name]:.4f}" for name in REPORTED)
            typer.echo(f"| {cell['task']} | {cell['baseline']} | {kind} | {result['requests']:,} | {values} | {cell['wall_seconds']} |")


if __name__ == "__main__":
    app()
