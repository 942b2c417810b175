"""Training throughput of the decoder: every position in one pass vs one row per target (sliding window).

Usage (from the repository root, after ``unisr data prepare``, ``unisr embed`` and ``unisr codes train``):

    python scripts/bench_train.py runs/beauty --codes runs/beauty-codes-joint --steps 30

Both modes train the same model (``--config``, default the TIGER-size ``decoder``) on real training
batches of the dataset (recommendation, plus search where ``--tasks`` asks), forward + backward +
AdamW, after warm-up steps; they alternate in blocks so that load on the machine affects both alike.
``--bf16`` adds every-position training under bf16 autocast (``precision: bf16-mixed``), and
``--torch-dropout`` adds it with ``nn.Dropout`` in place of unisr's dropout (the baseline of its CPU mask).
Reported: targets/s of each mode and their ratios, rows (encoder passes) per step, and the wall time.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, NamedTuple

import numpy as np
import torch
import typer

from unisr import api
from unisr.data.dataset import PreparedDataset
from unisr.decoder.artifact import id_tokens, layout_for
from unisr.decoder.examples import Examples
from unisr.decoder.inputs import InputBuilder, item_vectors
from unisr.decoder.model import Dropout, SemanticIdTransformer
from unisr.decoder.module import training_batches
from unisr.decoder.train import build_examples
from unisr.embeddings import ensure_embeddings
from unisr.tokenizer import SemanticTokenizer

app = typer.Typer(add_completion=False)
WARMUP_STEPS = 3
BLOCKS = 3  # timed blocks per mode, alternating


class Mode(NamedTuple):
    name: str
    every_position: bool
    precision: str = "32-true"
    torch_dropout: bool = False


def with_torch_dropout(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every unisr ``Dropout`` replaced by ``nn.Dropout`` of the same rate (the baseline of its CPU mask)."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, Dropout):
                setattr(module, name, torch.nn.Dropout(child.p))
    return model


def step_timer(
    model: SemanticIdTransformer, inputs: InputBuilder, examples: Examples, batches: list[np.ndarray], learning_rate: float, bf16: bool
):
    """A function that trains on the next batches and returns (seconds, targets, rows) spent on them."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    position = 0

    def run(steps: int) -> tuple[float, int, int]:
        nonlocal position
        seconds, targets, rows = 0.0, 0, 0
        for _ in range(steps):
            rows_of_batch = batches[position % len(batches)]
            position += 1
            started = time.perf_counter()
            batch, target, _ = inputs.batch(examples, rows_of_batch)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # what Lightning's bf16-mixed does on CPU
                loss = model(batch, target)
            loss.backward()
            optimizer.step()
            seconds += time.perf_counter() - started
            targets, rows = targets + len(target.row), rows + len(rows_of_batch)
        return seconds, targets, rows

    return run


@app.command()
def main(
    dataset_dir: Annotated[Path, typer.Argument(help="A prepared, embedded dataset directory.")],
    codes: Annotated[Path, typer.Option(help="Codes directory of that dataset.")],
    config: Annotated[str, typer.Option(help="Decoder config name or path.")] = "decoder",
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks whose examples train.")] = "rec",
    steps: Annotated[int, typer.Option(min=1, help="Timed steps per mode and block.")] = 10,
    threads: Annotated[int, typer.Option(min=0, help="torch intra-op threads (0 = torch default).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of weights and batches.")] = 0,
    bf16: Annotated[bool, typer.Option("--bf16/--no-bf16", help="Also time every-position training under bf16 autocast.")] = False,
    torch_dropout: Annotated[
        bool, typer.Option("--torch-dropout/--no-torch-dropout", help="Also time every-position training with nn.Dropout.")
    ] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the numbers as JSON here.")] = None,
):
    """Targets/s of every-position training against one row per target, on the same model and data."""
    started = time.perf_counter()
    if threads:
        torch.set_num_threads(threads)
    dataset = PreparedDataset.load(dataset_dir)
    tokenizer = SemanticTokenizer.load(codes, dataset)
    embeddings = ensure_embeddings(dataset_dir, tokenizer.manifest["embedding_model"], progress=False)
    query_row = {text: row for row, text in enumerate(embeddings.query_texts)}
    report: dict = {"dataset": dataset.name, "config": config, "tasks": tasks, "threads": torch.get_num_threads(), "modes": {}}
    modes = [Mode("every position", True), Mode("sliding window", False)]
    if bf16:
        modes.append(Mode("every position, bf16", True, precision="bf16-mixed"))
    if torch_dropout:
        modes.append(Mode("every position, nn.Dropout", True, torch_dropout=True))
    timers = {}
    for mode in modes:
        settings = api.decoder_config(
            config, tasks=tasks.split(","), every_position=mode.every_position, precision=mode.precision, progress=False, seed=seed
        )
        layout = layout_for(tokenizer.table, tokenizer.config.codebook_size, settings.user_buckets)
        examples = Examples.concat(list(build_examples(dataset, tokenizer.table, query_row, settings, "train").values()))
        content = item_vectors(embeddings.items, dataset, tokenizer.table.item_ids) if settings.history_content else None
        query_vectors = torch.from_numpy(np.ascontiguousarray(embeddings.queries)).float()
        inputs = InputBuilder(layout, id_tokens(tokenizer.table, layout), query_vectors, content)
        torch.manual_seed(seed)
        model = SemanticIdTransformer(settings, layout, embeddings.queries.shape[1]).train()
        if mode.torch_dropout:
            model = with_torch_dropout(model)
        batches = training_batches(examples, settings, seed)
        bf16_autocast = settings.precision == "bf16-mixed"
        timers[mode.name] = step_timer(model, inputs, examples, batches, settings.learning_rate, bf16_autocast)
        timers[mode.name](WARMUP_STEPS)
        report["modes"][mode.name] = {"rows": len(examples), "targets": examples.targets, "batch_size": settings.batch_size}
    totals = {name: [0.0, 0, 0] for name in timers}
    for _ in range(BLOCKS):
        for name, timer in timers.items():
            seconds, targets, rows = timer(steps)
            totals[name] = [totals[name][0] + seconds, totals[name][1] + targets, totals[name][2] + rows]
    for name, (seconds, targets, rows) in totals.items():
        report["modes"][name].update(
            {
                "timed_steps": steps * BLOCKS,
                "targets_per_s": targets / seconds,
                "rows_per_step": rows / (steps * BLOCKS),
                "seconds": seconds,
            }
        )
    speed = {name: numbers["targets_per_s"] for name, numbers in report["modes"].items()}
    report["ratio"] = speed["every position"] / speed["sliding window"]
    ratios = {"every position / sliding window": report["ratio"]}
    if bf16:
        ratios["bf16 / float32 (every position)"] = report["bf16_ratio"] = speed["every position, bf16"] / speed["every position"]
    if torch_dropout:
        ratios["unisr dropout / nn.Dropout (every position)"] = report["dropout_ratio"] = (
            speed["every position"] / speed["every position, nn.Dropout"]
        )
    report["wall_seconds"] = time.perf_counter() - started
    for name, numbers in report["modes"].items():
        typer.echo(
            f"{name:<27} {numbers['targets_per_s']:>8,.0f} targets/s  {numbers['rows_per_step']:>6.1f} rows/step  "
            f"({numbers['rows']:,} rows, {numbers['targets']:,} targets per epoch)"
        )
    for name, ratio in ratios.items():
        typer.echo(f"{name}: {ratio:.2f}x")
    typer.echo(f"wall {report['wall_seconds']:.0f} s")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    app()
