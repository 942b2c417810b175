"""The joint-versus-single-task comparison on real data, as reported in BENCHMARKS.md.

Usage (from the repository root; resumable: finished cells are read back):

    python scripts/bench_compare.py scientific          # 4 schemes + random IDs × rec / search / joint decoders, both tasks
    python scripts/bench_compare.py scientific-items    # the same on item-specific queries
    python scripts/bench_compare.py beauty-rec          # Beauty recommendation (TIGER's protocol, no cold-start hold-out)
    python scripts/bench_compare.py scientific --full   # full size: TIGER-size decoder, 3 seeds (configs/compare.yaml)
    python scripts/bench_compare.py synthetic --config compare-small   # the synthetic task (no download; smoke tests)

Each preset is one ``unisr compare`` call (the equivalent command is printed); the CPU presets use
configs/compare-bench.yaml (TIGER-size tokenizer, small decoder for 6 epochs, one seed), because the
TIGER-size decoder trains at about 175 examples/s on a 2-core CPU. ``--full`` runs the full-size
setting. Outputs land in ``<out>/<preset>[-full]/`` with ``wall.json`` (wall time of this call).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, NamedTuple

import typer

from unisr import api

app = typer.Typer(add_completion=False)


class Preset(NamedTuple):
    task: str
    cold_start: bool
    options: dict  # CompareConfig overrides
    flags: str  # the same, as `unisr compare` options (printed)


PRESETS = {
    "scientific": Preset("scientific", True, {}, ""),
    "scientific-items": Preset("scientific-items", True, {}, ""),
    "synthetic": Preset("synthetic", True, {}, ""),  # no download: quickstart-sized with --config compare-small; smoke tests
    "beauty-rec": Preset(
        "beauty",
        False,
        {
            "schemes": ["content", "joint"],
            "decoders": ["rec"],
            "random_ids": False,
            "baselines": ["popularity", "dense"],
            "decoder_overrides": {"epochs": 5, "patience": 2},
        },
        "--schemes content,joint --decoders rec --no-random-ids --baselines popularity,dense --decoder-epochs 5",
    ),
}


@app.command()
def main(
    preset: Annotated[str, typer.Argument(help=f"One of {', '.join(PRESETS)}.")],
    full: Annotated[bool, typer.Option("--full/--no-full", help="Full size: configs/compare.yaml (TIGER decoder, 3 seeds).")] = False,
    out: Annotated[Path, typer.Option(help="Parent of the comparison directories.")] = Path("runs"),
    data_root: Annotated[Path | None, typer.Option(help="Source data root.")] = None,
    config: Annotated[
        str | None, typer.Option(help="Compare config name or path (default: compare-bench, or compare with --full).")
    ] = None,
):
    if preset not in PRESETS:
        raise typer.BadParameter(f"choose one of {', '.join(PRESETS)}", param_hint="PRESET")
    chosen = PRESETS[preset]
    config_name = config or ("compare" if full else "compare-bench")
    settings = api.compare_config(config_name, **chosen.options)
    if full and "decoder_overrides" in chosen.options:
        settings.decoder_overrides = {}
    directory = out / f"compare-{preset}{'-full' if full else ''}"
    flags = chosen.flags.replace(" --decoder-epochs 5", "") if full else chosen.flags
    flags += "" if chosen.cold_start else " --no-cold-start"
    typer.echo(f"equivalent: unisr compare {chosen.task} --out {directory} --config {config_name} {flags}".rstrip())
    started = time.perf_counter()
    result = api.compare(chosen.task, directory, settings, data_root, chosen.cold_start, lambda message: typer.echo(message, err=True))
    wall = time.perf_counter() - started
    (directory / "wall.json").write_text(json.dumps({"preset": preset, "full": full, "wall_seconds": round(wall, 1)}, indent=2) + "\n")
    typer.echo(result.markdown)
    typer.echo(f"{preset}: {wall:.0f} s (finished cells read back count as 0)")


if __name__ == "__main__":
    app()
