"""The `unisr` command line: a thin layer over unisr.api."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from unisr import api
from unisr.data.stats import format_stats
from unisr.data.tasks import available_tasks
from unisr.embeddings import DEFAULT_MODEL, EmbedConfig
from unisr.errors import UnisrError

USER_ERROR_EXIT = 2

app = typer.Typer(help="unisr: unified generative search and recommendation with semantic IDs.", no_args_is_help=True, add_completion=False)
data_app = typer.Typer(help="Prepare datasets and inspect them.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("prepare")
def data_prepare(
    task: Annotated[str, typer.Argument(help="Task name (see `unisr data tasks`) or path of a task YAML.")],
    out: Annotated[Path | None, typer.Option(help="Output directory (default prepared/<task>).")] = None,
    data_root: Annotated[
        Path | None, typer.Option(help="Folder holding the source files (default $UNISR_DATA_ROOT or ../shared/data).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite/--no-overwrite", help="Replace an existing output directory.")] = False,
    cold_start: Annotated[
        bool | None,
        typer.Option("--cold-start/--no-cold-start", help="Hold out 5% of test items from training (default: as the task says)."),
    ] = None,
):
    """Load a task's source files, split them leave-one-out, build its search queries and write a prepared dataset."""
    dataset = api.prepare_dataset(task, out, data_root, overwrite, cold_start)
    counts = dataset.counts()
    typer.echo(
        f"prepared {dataset.name} → {dataset.root}: {counts['users']:,} users, {counts['items']:,} items, "
        f"{counts['interactions']:,} interactions, {len(dataset.queries):,} queries"
    )


@data_app.command("stats")
def data_stats(
    directory: Annotated[Path, typer.Argument(help="A prepared dataset directory.")],
    as_json: Annotated[bool, typer.Option("--json/--no-json", help="Print JSON instead of a table.")] = False,
):
    """Users, items, interactions, sequence lengths, queries per split, items without text, dropped users."""
    result = api.stats(directory)
    typer.echo(json.dumps(result._asdict(), indent=2) if as_json else format_stats(result))


@data_app.command("tasks")
def data_tasks():
    """List the tasks that `unisr data prepare` knows."""
    for name in available_tasks():
        typer.echo(name)


@app.command("embed")
def embed(
    directory: Annotated[Path, typer.Argument(help="A prepared dataset directory.")],
    model: Annotated[str, typer.Option(help="sentence-transformers model name or local directory.")] = DEFAULT_MODEL,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per forward pass.")] = 64,
    cache_dir: Annotated[Path | None, typer.Option(help="Embedding cache (default $UNISR_CACHE_DIR or ~/.cache/unisr/embeddings).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
):
    """Embed item and query texts of a prepared dataset (cached: a second run encodes nothing)."""
    result = api.embed(
        directory, EmbedConfig(model=model, batch_size=batch_size, cache_dir=str(cache_dir) if cache_dir else None, progress=progress)
    )
    typer.echo(
        f"embedded {result.items:,} items and {result.query_texts:,} query texts (dim {result.dimension}; "
        f"{result.encoded:,} encoded, the rest from cache) → {result.directory}"
    )


@app.command("quickstart")
def quickstart(
    workdir: Annotated[Path, typer.Option(help="Where the quickstart writes its artifacts.")] = api.DEFAULT_QUICKSTART_DIR,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
):
    """Run the pipeline on the default synthetic task (no download): prepare, stats, embed."""
    result = api.quickstart(workdir, EmbedConfig(progress=progress))
    typer.echo(f"== prepared {result.dataset.root}")
    typer.echo(format_stats(result.stats))
    typer.echo(
        f"== embedded {result.embeddings.items:,} items and {result.embeddings.query_texts:,} query texts "
        f"(dim {result.embeddings.dimension}, {result.embeddings.encoded:,} newly encoded) → {result.embeddings.directory}"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and exit code 2, without a traceback."""
    try:
        app(args=argv, standalone_mode=False)
    except UnisrError as error:
        typer.echo(f"error: {error}", err=True)
        return USER_ERROR_EXIT
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        return 1
    except click.exceptions.ClickException as error:
        error.show()
        return USER_ERROR_EXIT
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
