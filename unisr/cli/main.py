"""The `unisr` command line: a thin layer over unisr.api."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import Annotated

import typer

from unisr import defaults
from unisr.data.queries.probe import ProbeConfig
from unisr.data.stats import format_stats
from unisr.data.tasks import available_tasks
from unisr.embeddings import DEFAULT_MODEL, EmbedConfig
from unisr.errors import UnisrError, UnisrWarning
from unisr.io import atomic_write_bytes, lazy_module
from unisr.serve.defaults import DEFAULT_HOST, DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS, DEFAULT_PORT
from unisr.tokenizer import SCHEMES, format_health
from unisr.tokenizer.config import QUANTIZER_KINDS
from unisr.tokenizer.health import format_health_table
from unisr.tokenizer.inspect import format_inspection

USER_ERROR_EXIT = 2
DEBUG_ENV = "UNISR_DEBUG"
DEBUG_OPTION = "--debug"
QUANTIZER_HELP = " | ".join(f"{name} ({kind.summary})" for name, kind in QUANTIZER_KINDS.items())
COLD_HELP = "Share of the ranks kept for cold items (never in a training history): 0.1 gives them ranks 10, 20, … (default: the run's)."
FUSE_HELP = "Hybrid: fuse the run's ranking with bm25 or dense by reciprocal rank fusion (score = fused score)."
GUIDANCE_HELP = "Weight of the content prior of {anchor} in beam search (0 = pure decoder; default: the run's config)."
PRIOR_HELP = (
    "Content prior the guidance weights: codes (the tokenizer's residual prior), items (exact item prior) or both (mean of the two "
    "log-priors); default: the run's."
)


class UnisrGroup(typer.core.TyperGroup):
    """The top-level group: an EOFError from a command (numpy reading an empty or truncated file, say) becomes a
    UnisrError here, before typer turns it into a bare "Aborted!" (it takes an EOFError for a closed prompt)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EOFError as error:
            raise UnisrError(
                f"unexpected end of data ({error or 'EOFError'}): a file is empty or truncated "
                f"(run again with {DEBUG_OPTION} to see which one, then recreate it)"
            ) from error


api = lazy_module("unisr.api")  # the pipeline (and Lightning) load on the first command that needs them, not for `serve`

app = typer.Typer(
    help="unisr: unified generative search and recommendation with semantic IDs.",
    no_args_is_help=True,
    add_completion=False,
    cls=UnisrGroup,
)


@app.callback()
def global_options(
    debug: Annotated[bool, typer.Option(DEBUG_OPTION, help=f"On an error, also show the Python traceback (or set {DEBUG_ENV}=1).")] = False,
):
    # main() reads --debug from the arguments itself: a usage error can stop the parse before this callback runs.
    del debug


data_app = typer.Typer(help="Prepare datasets and inspect them.", no_args_is_help=True)
app.add_typer(data_app, name="data")
codes_app = typer.Typer(help="Train, inspect and extend semantic IDs.", no_args_is_help=True)
app.add_typer(codes_app, name="codes")


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


@data_app.command("probe-queries")
def data_probe_queries(
    directory: Annotated[Path, typer.Argument(help="A prepared dataset directory.")],
    out: Annotated[Path, typer.Option(help="JSONL file to write (evaluate on it with `unisr evaluate --queries`).")],
    n_valid: Annotated[int, typer.Option(help="Validation queries.")] = ProbeConfig.n_valid,
    n_test: Annotated[int, typer.Option(help="Test queries.")] = ProbeConfig.n_test,
    max_relevant: Annotated[int, typer.Option(help="Leave out needs with more relevant items than this.")] = ProbeConfig.max_relevant,
    seed: Annotated[int, typer.Option(help="Seed of the draw.")] = ProbeConfig.seed,
):
    """Held-out search queries from a generator no training protocol uses: a title word + a leaf category."""
    config = ProbeConfig(n_valid=n_valid, n_test=n_test, max_relevant=max_relevant, seed=seed)
    queries = api.probe_queries(directory, out, config)
    relevant = sum(len(query.items) for query in queries) / len(queries)
    splits = "  ".join(f"{split} {sum(query.split == split for query in queries):,}" for split in ("valid", "test"))
    typer.echo(f"wrote {len(queries):,} probe queries → {out} ({splits}; {relevant:.2f} relevant items per query)")


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


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise UnisrError(f"{option} {value!r}: choose one of {', '.join(allowed)}")
    return value


@codes_app.command("train")
def codes_train(
    dataset_dir: Annotated[Path, typer.Argument(help="A prepared dataset directory (embedded automatically if needed).")],
    scheme: Annotated[str, typer.Option(help="Signals shaping the codes: content | search | rec | joint.")] = "joint",
    quantizer: Annotated[str, typer.Option(help=QUANTIZER_HELP)] = "rqvae",
    out: Annotated[
        Path | None, typer.Option(help="Codes directory (default <dataset>-codes-<scheme>-<quantizer> beside the dataset).")
    ] = None,
    config: Annotated[str, typer.Option(help="Tokenizer YAML: a name under configs/ or a path.")] = defaults.DEFAULT_TOKENIZER_CONFIG,
    levels: Annotated[int | None, typer.Option(min=1, help="Residual levels (the collision token is added on top).")] = None,
    codebook_size: Annotated[int | None, typer.Option(min=2, help="Codes per level.")] = None,
    latent_dim: Annotated[int | None, typer.Option(min=1, help="Latent size.")] = None,
    beta: Annotated[float | None, typer.Option(help="Commitment weight.")] = None,
    lambda_search: Annotated[float | None, typer.Option(help="Weight of the search contrastive loss.")] = None,
    lambda_rec: Annotated[float | None, typer.Option(help="Weight of the co-engagement contrastive loss.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Adam learning rate.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Passes over the items.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of everything.")] = None,
    accelerator: Annotated[str | None, typer.Option(help="Lightning accelerator (cpu, gpu, auto).")] = None,
    devices: Annotated[int | None, typer.Option(min=1, help="Lightning devices (processes under ddp).")] = None,
    strategy: Annotated[str | None, typer.Option(help="Lightning strategy (auto, ddp, ddp_spawn).")] = None,
    num_nodes: Annotated[int | None, typer.Option(min=1, help="Lightning nodes (machines; each runs --devices processes).")] = None,
    model: Annotated[str, typer.Option(help="Sentence-transformers model of the embeddings.")] = DEFAULT_MODEL,
    overwrite: Annotated[bool, typer.Option("--overwrite/--no-overwrite", help="Replace an existing codes directory.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
):
    """Train semantic IDs for a prepared dataset and print their health report."""
    settings = api.tokenizer_config(
        config,
        scheme=_choice(scheme, SCHEMES, "--scheme"),
        quantizer=_choice(quantizer, tuple(QUANTIZER_KINDS), "--quantizer"),
        levels=levels,
        codebook_size=codebook_size,
        latent_dim=latent_dim,
        beta=beta,
        lambda_search=lambda_search,
        lambda_rec=lambda_rec,
        learning_rate=learning_rate,
        epochs=epochs,
        seed=seed,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        progress=progress,
    )
    result = api.train_codes(dataset_dir, settings, out, model, overwrite)
    if result is None:  # a non-zero DDP rank
        return
    typer.echo(
        f"codes ({settings.scheme}, {settings.quantizer}) → {result.directory} in {result.wall_seconds:.1f} s; "
        f"{len(result.tokenizer.table):,} items, {settings.id_length} tokens per ID"
    )
    typer.echo(format_health(result.health))


@codes_app.command("inspect")
def codes_inspect(
    codes_dir: Annotated[Path, typer.Argument(help="A codes directory.")],
    dataset: Annotated[Path | None, typer.Option(help="Dataset for titles (default: the one the codes were trained on).")] = None,
    examples: Annotated[int, typer.Option(min=0, help="Items whose prefix neighbours are shown.")] = 3,
):
    """Health report, the largest collision groups, and items sharing a prefix with a few items (with titles)."""
    typer.echo(format_inspection(api.inspect(codes_dir, dataset, examples)))


@codes_app.command("assign")
def codes_assign(
    codes_dir: Annotated[Path, typer.Argument(help="A codes directory.")],
    dataset: Annotated[
        Path | None, typer.Option(help="Dataset holding the new items (default: the one the codes were trained on).")
    ] = None,
    items: Annotated[str | None, typer.Option(help="Comma-separated item ids (default: every catalog item without an ID).")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
):
    """Give IDs to items the tokenizer has not coded (new or cold-start items); existing IDs never change."""
    wanted = [item.strip() for item in items.split(",") if item.strip()] if items else None
    result = api.assign(codes_dir, dataset, wanted, progress)
    typer.echo(f"assigned {len(result.assigned):,} new IDs; the table now holds {len(result.table):,} items")
    for item in result.assigned[:10]:
        typer.echo(f"  {item:<14} {'-'.join(map(str, result.table.semantic_id(item)))}")


def _print_results(results, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([r._asdict() for r in results], indent=2))
        return
    for r in results:
        typer.echo(f"{r.rank:>3}  {r.item_id:<14} {r.score:>9.3f}  {'-'.join(map(str, r.semantic_id)):<16} {r.title}")


@app.command("train")
def train(
    dataset_dir: Annotated[Path, typer.Argument(help="A prepared dataset directory.")],
    codes: Annotated[Path, typer.Option(help="Codes directory (from `unisr codes train`) of that dataset.")],
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks to train: rec, search or both.")] = "rec,search",
    out: Annotated[Path | None, typer.Option(help="Run directory (default <codes>-run-<tasks> beside the codes).")] = None,
    config: Annotated[str, typer.Option(help="Decoder YAML: a name under configs/ or a path.")] = defaults.DEFAULT_DECODER_CONFIG,
    epochs: Annotated[int | None, typer.Option(min=1, help="Passes over the training examples.")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Targets per step.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Peak learning rate.")] = None,
    lr_schedule: Annotated[
        str | None, typer.Option(help="Decay after warm-up: inverse_sqrt or cosine (to 0 at the last epoch or --max-minutes, if sooner).")
    ] = None,
    search_share: Annotated[float | None, typer.Option(help="Share of search targets in mixed batches.")] = None,
    every_position: Annotated[
        bool | None,
        typer.Option("--every-position/--sliding-window", help="One pass per history teaches every position, or one row per target."),
    ] = None,
    history_content: Annotated[
        bool | None,
        typer.Option("--history-content/--no-history-content", help="History items also enter with their content embedding."),
    ] = None,
    index_share: Annotated[float | None, typer.Option(help="Share of targets that are items' own texts → their IDs (0 = none).")] = None,
    query_pieces: Annotated[
        int | None, typer.Option(min=0, help="Word pieces of the query text read as learned tokens, beside its vector (0 = none).")
    ] = None,
    query_piece_init: Annotated[
        str | None, typer.Option(help="Word-piece table: learned (from scratch) or encoder (the sentence encoder's, frozen, projected).")
    ] = None,
    max_minutes: Annotated[float | None, typer.Option(min=0, help="Stop training after this many minutes (0 = no limit).")] = None,
    guidance_training: Annotated[
        float | None,
        typer.Option(min=0, help="Weight of the content prior inside the model, in training and decoding (0 = none)."),
    ] = None,
    guidance_priors: Annotated[
        str | None, typer.Option(help="Content priors the sweep after training tries per task (comma-separated): codes, items, both.")
    ] = None,
    user_buckets: Annotated[int | None, typer.Option(min=0, help="Hashed user tokens (0 = none).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed.")] = None,
    threads: Annotated[int | None, typer.Option(min=0, help="Torch threads (0 = default).")] = None,
    precision: Annotated[
        str | None, typer.Option(help="Training arithmetic: 32-true, or bf16-mixed (bf16 autocast; the weights stay float32).")
    ] = None,
    accelerator: Annotated[str | None, typer.Option(help="Lightning accelerator (cpu, gpu, auto).")] = None,
    devices: Annotated[int | None, typer.Option(min=1, help="Lightning devices (processes under ddp).")] = None,
    strategy: Annotated[str | None, typer.Option(help="Lightning strategy (auto, ddp, ddp_spawn).")] = None,
    num_nodes: Annotated[int | None, typer.Option(min=1, help="Lightning nodes (machines; each runs --devices processes).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite/--no-overwrite", help="Replace an existing run directory.")] = False,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue an interrupted run from its last checkpoint.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
):
    """Train one seq2seq decoder that generates semantic IDs from histories (rec) and/or queries (search)."""
    settings = api.decoder_config(
        config,
        tasks=[task.strip() for task in tasks.split(",") if task.strip()],
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        lr_schedule=lr_schedule,
        search_share=search_share,
        every_position=every_position,
        history_content=history_content,
        index_share=index_share,
        query_pieces=query_pieces,
        query_piece_init=query_piece_init,
        max_minutes=max_minutes,
        guidance_training=guidance_training,
        guidance_priors=None if guidance_priors is None else [part.strip() for part in guidance_priors.split(",") if part.strip()],
        user_buckets=user_buckets,
        seed=seed,
        threads=threads,
        precision=precision,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        progress=progress,
    )
    result = api.train(dataset_dir, codes, settings, out, overwrite, resume)
    if result is None:
        return
    speed = f"{result.targets_per_second:,.0f} targets/s" if result.targets_per_second else "speed not measured"
    best = ", ".join(f"{key} {value:.4f}" for key, value in result.best_validation.items())
    typer.echo(f"run → {result.directory} in {result.wall_seconds:.0f} s ({speed}); best validation: {best or 'none'}")


@app.command("recommend")
def recommend(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (from `unisr train`).")],
    history: Annotated[str | None, typer.Option(help="Comma-separated item ids, oldest first.")] = None,
    user: Annotated[str | None, typer.Option(help="A user of the dataset: recommend after everything they engaged with.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Items to return.")] = 10,
    exclude_history: Annotated[
        bool, typer.Option("--exclude-history/--include-history", help="Leave out items already in the history.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json/--no-json", help="Print JSON.")] = False,
    guidance: Annotated[float | None, typer.Option(help=GUIDANCE_HELP.format(anchor="the last history item"))] = None,
    guidance_prior: Annotated[str | None, typer.Option(help=PRIOR_HELP)] = None,
    cold_share: Annotated[float | None, typer.Option(help=COLD_HELP)] = None,
):
    """Next-item recommendations: rank, item id, score, semantic ID, title."""
    items = [item.strip() for item in history.split(",") if item.strip()] if history is not None else None
    retriever = api.load(run_dir).with_guidance(rec=guidance, prior=guidance_prior).with_cold_share(cold_share)
    _print_results(retriever.recommend(history=items, user=user, k=k, exclude_history=exclude_history), as_json)


@app.command("search")
def search(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (from `unisr train`).")],
    query: Annotated[str, typer.Argument(help="Query text.")],
    k: Annotated[int, typer.Option("-k", "--k", help="Items to return.")] = 10,
    user: Annotated[str | None, typer.Option(help="Personalize with this user's history.")] = None,
    as_json: Annotated[bool, typer.Option("--json/--no-json", help="Print JSON.")] = False,
    guidance: Annotated[float | None, typer.Option(help=GUIDANCE_HELP.format(anchor="the query"))] = None,
    guidance_prior: Annotated[str | None, typer.Option(help=PRIOR_HELP)] = None,
    fuse: Annotated[str | None, typer.Option(help=FUSE_HELP)] = None,
):
    """Search: generate the semantic IDs of the items that answer a text query."""
    retriever = api.load(run_dir).with_guidance(search=guidance, prior=guidance_prior)
    results = retriever.search(query, k=k, user=user) if fuse is None else api.hybrid_search(retriever, query, k, fuse, user)
    _print_results(results, as_json)


@app.command("evaluate")
def evaluate(
    dataset_dir: Annotated[Path, typer.Argument(help="A prepared dataset directory.")],
    run: Annotated[Path | None, typer.Option(help="A run directory to evaluate.")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="Or a baseline: popularity, bm25 (search), dense, sasrec (rec; trained first).")
    ] = None,
    tasks: Annotated[str, typer.Option(help="Comma-separated tasks: rec, search.")] = "rec,search",
    split: Annotated[str, typer.Option(help="valid or test.")] = "test",
    k: Annotated[str, typer.Option("-k", "--k", help="Comma-separated cut-offs.")] = "5,10,20",
    out: Annotated[Path | None, typer.Option(help="Also write the metrics as JSON here.")] = None,
    guidance_rec: Annotated[float | None, typer.Option(help=GUIDANCE_HELP.format(anchor="the last history item"))] = None,
    guidance_search: Annotated[float | None, typer.Option(help=GUIDANCE_HELP.format(anchor="the query"))] = None,
    guidance_prior: Annotated[str | None, typer.Option(help=PRIOR_HELP)] = None,
    fuse: Annotated[str | None, typer.Option(help=FUSE_HELP)] = None,
    cold_share: Annotated[float | None, typer.Option(help=COLD_HELP)] = None,
    sasrec_config: Annotated[
        str, typer.Option(help="SASRec settings (with --baseline sasrec): a name under configs/ or a YAML path.")
    ] = "sasrec",
    queries: Annotated[
        Path | None, typer.Option(help="Search on this JSONL query file instead (e.g. from `unisr data probe-queries`).")
    ] = None,
):
    """Full-ranking Recall@K / NDCG@K per task, with head/torso/tail (and cold-start) breakdowns."""
    try:
        cutoffs = tuple(int(part) for part in k.split(",") if part.strip())
    except ValueError:
        raise UnisrError(f"-k {k!r}: expected comma-separated integers such as 5,10,20") from None
    if not cutoffs or min(cutoffs) < 1:
        raise UnisrError(f"-k {k!r}: cut-offs must be positive integers")
    if split not in ("valid", "test"):
        raise UnisrError(f"--split {split!r}: choose valid or test")
    wanted = tuple(task.strip() for task in tasks.split(",") if task.strip())
    results = api.evaluate_ranker(
        dataset_dir,
        run,
        baseline,
        wanted,
        split,
        cutoffs,
        guidance_rec=guidance_rec,
        guidance_search=guidance_search,
        guidance_prior=guidance_prior,
        fuse=fuse,
        cold_share=cold_share,
        sasrec_config=sasrec_config,
        queries=queries,
    )
    payload = {task: result._asdict() for task, result in results.items()}
    if out is not None:
        atomic_write_bytes(out, (json.dumps(payload, indent=2) + "\n").encode())
    for task, result in results.items():
        metrics = "  ".join(f"{name} {value:.4f}" for name, value in result.metrics.items())
        typer.echo(f"{task:<7} {result.split} ({result.requests:,} requests)  {metrics}")
        for group, values in result.breakdown.items():
            typer.echo(
                f"   {group:<10} ({values['requests']:,})  recall@{max(cutoffs)} {values[f'recall@{max(cutoffs)}']:.4f}  "
                f"ndcg@{max(cutoffs)} {values[f'ndcg@{max(cutoffs)}']:.4f}"
            )


def _names(value: str | None, option: str) -> list[str] | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise UnisrError(f"{option} {value!r}: expected comma-separated names")
    return names


def _integers(value: str | None, option: str) -> list[int] | None:
    names = _names(value, option)
    try:
        return None if names is None else [int(name) for name in names]
    except ValueError:
        raise UnisrError(f"{option} {value!r}: expected comma-separated integers such as 0,1,2") from None


def _echo_progress(message: str) -> None:
    typer.echo(message, err=True)


@app.command("compare")
def compare(
    task_or_dataset: Annotated[str, typer.Argument(help="A task name (prepared under OUT/dataset) or a prepared dataset directory.")],
    out: Annotated[Path | None, typer.Option(help="Comparison directory (default comparisons/<dataset>); finished cells are kept.")] = None,
    config: Annotated[str, typer.Option(help="Comparison config: a name under configs/ (compare, compare-small) or a YAML path.")] = (
        defaults.DEFAULT_COMPARE_CONFIG
    ),
    schemes: Annotated[str | None, typer.Option(help="Comma-separated code schemes: content, search, rec, joint.")] = None,
    quantizers: Annotated[str | None, typer.Option(help="Comma-separated quantizers: rqvae, rqkmeans.")] = None,
    decoders: Annotated[str | None, typer.Option(help="Comma-separated decoders: rec, search, joint.")] = None,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds (default 0,1,2).")] = None,
    random_ids: Annotated[
        bool | None, typer.Option("--random-ids/--no-random-ids", help="Also train the decoders on random IDs of the same length.")
    ] = None,
    baselines: Annotated[str | None, typer.Option(help="Comma-separated baselines: popularity, bm25, dense, sasrec.")] = None,
    tokenizer_config: Annotated[str | None, typer.Option(help="Tokenizer config (name under configs/ or YAML path).")] = None,
    decoder_config: Annotated[str | None, typer.Option(help="Decoder config (name under configs/ or YAML path).")] = None,
    tokenizer_epochs: Annotated[int | None, typer.Option(help="Override the tokenizer's epochs.")] = None,
    decoder_epochs: Annotated[int | None, typer.Option(help="Override the decoder's epochs.")] = None,
    split: Annotated[str | None, typer.Option(help="Reported split: valid or test.")] = None,
    metric: Annotated[str | None, typer.Option(help="Metric of the plot and the kept shares (default ndcg@10).")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Cells trained at once, each in its own process (1 = one at a time, in this process).")
    ] = None,
    data_root: Annotated[Path | None, typer.Option(help="Source data root when a task is prepared.")] = None,
    cold_start: Annotated[
        bool, typer.Option("--cold-start/--no-cold-start", help="When preparing a task: hold out 5% of test items (cold start).")
    ] = True,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a line as each cell starts and ends.")] = True,
):
    """Joint vs single-task semantic IDs: every scheme × rec-only / search-only / joint decoder × seed, on both tasks."""
    settings = api.compare_config(
        config,
        schemes=_names(schemes, "--schemes"),
        quantizers=_names(quantizers, "--quantizers"),
        decoders=_names(decoders, "--decoders"),
        seeds=_integers(seeds, "--seeds"),
        random_ids=random_ids,
        baselines=_names(baselines, "--baselines"),
        tokenizer=tokenizer_config,
        decoder=decoder_config,
        split=split,
        metric=metric,
        workers=workers,
    )
    if tokenizer_epochs is not None:
        settings.tokenizer_overrides = {**settings.tokenizer_overrides, "epochs": tokenizer_epochs}
    if decoder_epochs is not None:
        settings.decoder_overrides = {**settings.decoder_overrides, "epochs": decoder_epochs}
    result = api.compare(task_or_dataset, out, settings, data_root, cold_start, _echo_progress if progress else None)
    typer.echo(result.markdown)
    plot = f", {result.plot}" if result.plot else ""
    typer.echo(f"wrote {result.directory}/results.json, results.csv, results.md{plot}")


@app.command("quickstart")
def quickstart(
    workdir: Annotated[Path, typer.Option(help="Where the quickstart writes its artifacts.")] = defaults.DEFAULT_QUICKSTART_DIR,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress lines.")] = True,
):
    """The default synthetic task (no download): prepare, embed, then compare every code scheme × decoder on both tasks."""
    result = api.quickstart(workdir, EmbedConfig(progress=progress), _echo_progress if progress else None)
    typer.echo(f"== prepared {result.dataset.root}")
    typer.echo(format_stats(result.stats))
    typer.echo(
        f"== embedded {result.embeddings.items:,} items and {result.embeddings.query_texts:,} query texts "
        f"(dim {result.embeddings.dimension}, {result.embeddings.encoded:,} newly encoded) → {result.embeddings.directory}"
    )
    typer.echo("== semantic IDs of the four schemes and random IDs (configs/tokenizer-small.yaml)")
    typer.echo(format_health_table(result.health))
    typer.echo(f"== comparison (configs/compare-small.yaml) → {result.comparison.directory}")
    typer.echo(result.comparison.markdown)
    typer.echo(f"== examples from the joint decoder on the joint codes ({result.run_dir})")
    for text, results in result.searches.items():
        typer.echo(f"-- search {text!r}")
        _print_results(results, False)
    for user, results in result.recommendations.items():
        typer.echo(f"-- recommend for user {user}")
        _print_results(results, False)
    typer.echo("== serve the joint decoder and the comparison in a browser (needs pip install -e '.[serve]'):")
    typer.echo(f"unisr serve {result.run_dir} --compare {result.comparison.directory}")


@app.command("serve")
def serve(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (from `unisr train`, `unisr compare` or `unisr quickstart`).")],
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default; 0.0.0.0 exposes the server to the network).")] = (
        DEFAULT_HOST
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = DEFAULT_PORT,
    compare: Annotated[Path | None, typer.Option(help="A comparison directory (from `unisr compare`): served at /compare.")] = None,
    batching: Annotated[
        bool, typer.Option("--batching/--no-batching", help="Gather concurrent requests into one batched beam search.")
    ] = True,
    max_batch: Annotated[int, typer.Option(min=1, help="Requests per batched beam search.")] = DEFAULT_MAX_BATCH,
    max_wait_ms: Annotated[float, typer.Option(min=0, help="How long a request waits for others to batch with.")] = DEFAULT_MAX_WAIT_MS,
    threads: Annotated[int, typer.Option(min=0, help="Torch threads of the model (0 = torch default).")] = 0,
):
    """Serve a run over HTTP: a JSON API (search, recommend, items, users; OpenAPI at /docs) and a browser page at /."""
    try:
        from unisr.serve.app import run_server  # here only: FastAPI and uvicorn are the optional extra unisr[serve]
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] == "unisr":
            raise
        raise UnisrError(f"serving needs the serve extra ({error.name} is missing): pip install 'unisr[serve]'") from None
    run_server(run_dir, host, port, compare, batching, max_batch, max_wait_ms, threads, report=typer.echo)


def _debug_requested(args: list[str]) -> bool:
    """``--debug`` among the global options (before the command name), or $UNISR_DEBUG set to 1/true/yes/on."""
    if os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    for arg in args:
        if arg == DEBUG_OPTION:
            return True
        if arg == "--" or not arg.startswith("-"):
            return False
    return False


def _exception_types(name: str) -> tuple[type[BaseException], ...]:
    """Classes called ``name`` in typer and in the click it uses: its vendored copy (typer >= 0.2x) or the real click.

    Only modules already imported are consulted: an exception can only come from a module that was loaded.
    """
    found: list[type[BaseException]] = []
    for module_name in ("typer", "typer.exceptions", "typer._click.exceptions", "click.exceptions"):
        candidate = getattr(sys.modules.get(module_name), name, None)
        if isinstance(candidate, type) and issubclass(candidate, BaseException) and candidate not in found:
            found.append(candidate)
    return tuple(found)


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _error_message(error: BaseException) -> str | None:
    """The one-line message for a user-facing error, or None for an error that is a bug (shown with its traceback)."""
    if isinstance(error, UnisrError):
        return _one_line(str(error))
    if isinstance(error, _exception_types("ClickException")):  # usage errors: bad value, missing argument, unknown option/command
        message = _one_line(error.format_message())
        ctx = getattr(error, "ctx", None)
        if ctx is not None:
            message += f" (see `{ctx.command_path} --help`)"
        return message
    if isinstance(error, OSError) and error.filename is not None:  # a file or folder that cannot be read or written
        return f"{error.filename}: {error.strerror or error} (check the path and its permissions)"
    return None


def _one_line_unisr_warnings(show_other):
    """A ``warnings.showwarning`` that prints unisr's own warnings as one `warning:` line on stderr, others with ``show_other``."""

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, UnisrWarning):
            print(f"warning: {_one_line(str(message))}", file=file or sys.stderr)
        else:
            show_other(message, category, filename, lineno, file, line)

    return show


def _exit_on_terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point: usage and user errors become one `error:` line on stderr and exit code 2, without a traceback.

    ``--debug`` (before the command) or UNISR_DEBUG=1 also prints the traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_terminate)  # so `finally` blocks remove staging folders and locks
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.showwarning = _one_line_unisr_warnings(warnings.showwarning)
            result = app(args=args, standalone_mode=False, prog_name="unisr")
    except Exception as error:
        if isinstance(error, _exception_types("Exit")):  # older typer/click raise it; newer ones return its code
            return error.exit_code
        if isinstance(error, _exception_types("NoArgsIsHelpError")):  # `unisr` or `unisr data` alone
            help_text = error.format_message()  # empty where typer's rich help has already printed it
            if help_text:
                typer.echo(help_text)
            return USER_ERROR_EXIT
        message = _error_message(error)
        if message is None and isinstance(error, _exception_types("Abort")):
            typer.echo("aborted", err=True)
            return 1
        if message is None:
            raise  # a bug: Python (or typer's pretty printer) shows the traceback
        if debug:
            traceback.print_exception(error)
        typer.echo(f"error: {message}", err=True)
        return USER_ERROR_EXIT
    if isinstance(result, int) and not isinstance(result, bool):
        return result  # the code of an Exit (`--help` gives 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
