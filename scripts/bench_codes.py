"""Benchmark of the semantic-ID schemes: health report and training wall time per scheme × quantizer.

Usage (from the repository root; results land in BENCHMARKS.md by hand):

    python scripts/bench_codes.py --task beauty --task scientific --out runs/bench-codes

Prepares and embeds each task when needed (``<out>/<task>``), then trains every scheme × quantizer
with configs/tokenizer.yaml and writes ``<out>/results.json`` and a markdown table to stdout.
Finished cells are kept in results.json and not recomputed.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Annotated

import torch
import typer

from unisr import api
from unisr.embeddings import ensure_embeddings
from unisr.tokenizer import QUANTIZERS, SCHEMES

app = typer.Typer(add_completion=False)


def _prepared(task: str, out: Path, data_root: Path | None) -> tuple[Path, float]:
    """The task's prepared and embedded dataset under ``out``, and the seconds spent embedding (near 0 from the cache)."""
    target = out / task
    if not (target / "manifest.json").is_file():
        api.prepare_dataset(task, target, data_root)
    started = time.perf_counter()
    ensure_embeddings(target, progress=False)
    return target, time.perf_counter() - started


def _row(task: str, cell: dict) -> str:
    health = cell["health"]
    used = "/".join(str(level["codes_used"]) for level in health["levels"])
    perplexity = "/".join(f"{level['perplexity']:.0f}" for level in health["levels"])
    co = health["co_engagement"] or {}
    search = health["search"] or {}
    return (
        f"| {task} | {cell['scheme']} | {cell['quantizer']} | {cell.get('signal_latent', 'pre')} | {used} | {perplexity} | "
        f"{health['collision_rate']:.1%} | {health['max_collision_token']} | {health['reconstruction_mse']:.3f} | "
        f"{co.get('share_first_code', 0):.1%} ({co.get('random_share_first_code', 0):.1%}) | {co.get('mean_shared_prefix', 0):.2f} | "
        f"{search.get('share_first_code', 0):.1%} ({search.get('chance', 0):.1%}) | {cell['wall_seconds']:.0f} |"
    )


@app.command()
def main(
    task: Annotated[list[str], typer.Option(help="Tasks to benchmark (repeat the option).")] = ["beauty", "scientific"],
    scheme: Annotated[list[str], typer.Option(help="Schemes (repeat).")] = list(SCHEMES),
    quantizer: Annotated[list[str], typer.Option(help="Quantizers (repeat).")] = list(QUANTIZERS),
    signal_latent: Annotated[list[str], typer.Option(help="Where signal losses act (repeat to compare pre and post).")] = ["pre"],
    config: Annotated[str, typer.Option(help="Tokenizer config name or path.")] = "tokenizer",
    epochs: Annotated[int | None, typer.Option(help="Override the config's epochs.")] = None,
    out: Annotated[Path, typer.Option(help="Working directory for datasets, codes and results.json.")] = Path("runs/bench-codes"),
    data_root: Annotated[Path | None, typer.Option(help="Source data root.")] = None,
):
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for task_name in task:
        dataset_dir, embed_seconds = _prepared(task_name, out, data_root)
        typer.echo(f"{task_name}: embeddings ready in {embed_seconds:.0f} s")
        for scheme_name in scheme:
            for quantizer_name in quantizer:
                # signals act after quantization only where the quantizer trains with the encoder (rqvae)
                for latent in signal_latent if scheme_name != "content" and quantizer_name == "rqvae" else ["pre"]:
                    key = f"{task_name}/{scheme_name}/{quantizer_name}/{latent}"
                    if key in results:
                        continue
                    settings = api.tokenizer_config(
                        config, scheme=scheme_name, quantizer=quantizer_name, signal_latent=latent, epochs=epochs, progress=False
                    )
                    result = api.train_codes(dataset_dir, settings, out / "codes" / key.replace("/", "-"), overwrite=True)
                    results[key] = {
                        "task": task_name,
                        "scheme": scheme_name,
                        "quantizer": quantizer_name,
                        "signal_latent": latent,
                        "epochs": settings.epochs,
                        "wall_seconds": result.wall_seconds,
                        "health": result.health.to_dict(),
                    }
                    results_path.write_text(json.dumps(results, indent=2))
                    typer.echo(_row(task_name, results[key]))
    typer.echo(
        f"\nmachine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    typer.echo(
        "| task | scheme | quantizer | signals on | codes used | perplexity | collisions | max extra token | recon MSE "
        "| co-engaged same 1st code (random) | shared prefix | query 1st code (chance) | wall s |"
    )
    typer.echo("|" + "---|" * 13)
    for cell in results.values():
        if cell["task"] in task:
            typer.echo(_row(cell["task"], cell))


if __name__ == "__main__":
    app()
