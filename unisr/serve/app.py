"""The HTTP face of a trained run: ``create_app(retriever)`` builds the FastAPI app, ``run_server`` serves it with uvicorn.

Endpoints: GET / (the browser page), GET /health, POST /search, POST /recommend, GET /items/{id}, GET /users/{id},
GET /examples, GET /compare and /compare/tradeoff.png (with a comparison directory); OpenAPI at /docs.
Bad input gets a 4xx answer ``{"error": "<one line>", "field": "<the field at fault>"}``, never a 500.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path

import torch
from fastapi import FastAPI, Query
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from unisr.decoder.retriever import GenerativeRetriever, Retrieved
from unisr.errors import UnisrError
from unisr.io import read_json
from unisr.serve.batcher import MS_PER_S, Job, RequestBatcher
from unisr.serve.defaults import DEFAULT_HOST, DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS, DEFAULT_PORT
from unisr.serve.errors import ApiError, install_error_handlers
from unisr.serve.models import (
    MAX_K,
    Answer,
    Comparison,
    DatasetInfo,
    ErrorBody,
    Examples,
    Health,
    ItemView,
    RecommendRequest,
    Result,
    SearchRequest,
    UserView,
)
from unisr.serve.views import DEFAULT_NEIGHBOURS, MAX_NEIGHBOURS, Catalogue, comparison, examples

STATIC_DIR = Path(__file__).parent / "static"
RESULTS_FILE = "results.json"
PLOT_FILE = "tradeoff.png"
PLOT_URL = "/compare/tradeoff.png"
WARM_UP_QUERY = "unisr serve warm-up {stamp}"
ERRORS = {400: {"model": ErrorBody}, 404: {"model": ErrorBody}, 413: {"model": ErrorBody}, 422: {"model": ErrorBody}}


def _results(retrieved: list[Retrieved]) -> list[Result]:
    return [Result(rank=r.rank, item_id=r.item_id, title=r.title, score=r.score, semantic_id=list(r.semantic_id)) for r in retrieved]


def read_comparison(compare_dir: Path) -> dict:
    if not (compare_dir / RESULTS_FILE).is_file():
        raise UnisrError(f"{compare_dir}: no {RESULTS_FILE} here (pass the directory `unisr compare` or `unisr quickstart` wrote)")
    return read_json(compare_dir / RESULTS_FILE)


def create_app(
    retriever: GenerativeRetriever,
    compare_dir: str | Path | None = None,
    batching: bool = True,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    max_k: int = MAX_K,
) -> FastAPI:
    """The app answering for ``retriever``; ``batching=False`` decodes every request alone (for comparison)."""
    dataset = retriever.dataset
    compare_dir = Path(compare_dir) if compare_dir is not None else None
    compare_results = read_comparison(compare_dir) if compare_dir is not None else None
    batcher = RequestBatcher(retriever, max_batch if batching else 1, max_wait_ms if batching else 0.0)
    catalogue = Catalogue(retriever)
    k_limit = min(max_k, len(retriever.item_ids))
    started = time.monotonic()

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        await batcher.close()

    app = FastAPI(
        title="unisr",
        summary=f"Generative search and recommendation with semantic IDs: run {retriever.run_dir.name} on {dataset.name}",
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    install_error_handlers(app)

    def check_k(k: int) -> None:
        if k > k_limit:
            reason = f"{len(retriever.item_ids):,} items have semantic IDs" if k_limit < max_k else f"the server's limit is {max_k}"
            raise ApiError(422, f"k={k}: must lie between 1 and {k_limit} ({reason})", "k")

    def history_of(user: str) -> tuple[str, ...]:
        if user not in dataset.split_by_user:
            raise ApiError(422, f"unknown user {user!r}: not a user of dataset {dataset.name!r} (see /examples)", "user")
        return tuple(retriever.user_history(user))

    def check_history(history: list[str]) -> tuple[str, ...]:
        unknown = [item for item in history if item not in dataset.catalog]
        if unknown:
            shown = ", ".join(repr(item) for item in unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise ApiError(422, f"history holds {len(unknown)} item id(s) unknown to dataset {dataset.name!r}: {shown}", "history")
        return tuple(history)

    def check_task(task: str) -> None:
        if task not in retriever.config.tasks:
            raise ApiError(400, f"this run was trained for {', '.join(retriever.config.tasks)} only, not {task}")

    async def answer(job: Job, arrived: float) -> Answer:
        result = await batcher.submit(job)
        took = (time.perf_counter() - arrived) * MS_PER_S
        return Answer(results=_results(result.results), took_ms=round(took, 2), batch_size=result.batch_size)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/health")
    async def health() -> Health:
        return Health(
            status="ok",
            run=str(retriever.run_dir),
            dataset=DatasetInfo(name=dataset.name, fingerprint=dataset.fingerprint),
            items=len(retriever.item_ids),
            catalog_items=len(dataset.catalog),
            users=len(dataset.splits),
            tasks=list(retriever.config.tasks),
            uptime_s=round(time.monotonic() - started, 3),
            batching=batching,
            max_batch=batcher.max_batch,
            max_k=k_limit,
            compare=compare_results is not None,
        )

    @app.post("/search", responses=ERRORS)
    async def search(request: SearchRequest) -> Answer:
        """Items answering a text query, personalized by a history or a user where given."""
        arrived = time.perf_counter()
        check_task("search")
        check_k(request.k)
        history = check_history(request.history) if request.history is not None else None
        if request.user is not None:
            user_history = history_of(request.user)
            history = user_history if history is None else history
        return await answer(Job("search", request.k, history or (), request.user, request.query), arrived)

    @app.post("/recommend", responses=ERRORS)
    async def recommend(request: RecommendRequest) -> Answer:
        """Next items after a history, or after everything a user engaged with."""
        arrived = time.perf_counter()
        check_task("rec")
        check_k(request.k)
        if (request.user is None) == (request.history is None):
            raise ApiError(422, "pass exactly one of user or history", "user" if request.user is None else "history")
        if request.history is not None and not request.history:
            raise ApiError(422, "history is empty: pass at least one item id, oldest first", "history")
        history = history_of(request.user) if request.user is not None else check_history(request.history)
        return await answer(Job("rec", request.k, history, request.user, exclude_history=request.exclude_history), arrived)

    @app.get("/items/{item_id}", responses=ERRORS)
    async def item(item_id: str, limit: int = Query(DEFAULT_NEIGHBOURS, ge=0, le=MAX_NEIGHBOURS)) -> ItemView:
        """An item's text fields, its semantic ID and the items sharing the longest prefixes with it."""
        if item_id not in dataset.catalog:
            raise ApiError(404, f"unknown item {item_id!r}: not in dataset {dataset.name!r}", "item_id")
        return catalogue.item(item_id, limit)

    @app.get("/users/{user_id}", responses=ERRORS)
    async def user(user_id: str) -> UserView:
        """A user's history with titles and semantic IDs, oldest first."""
        if user_id not in dataset.split_by_user:
            raise ApiError(404, f"unknown user {user_id!r}: not a user of dataset {dataset.name!r} (see /examples)", "user_id")
        return catalogue.user(user_id, retriever.user_history(user_id))

    @app.get("/examples")
    async def example_requests() -> Examples:
        """A few test queries and users to try."""
        return examples(dataset)

    @app.get("/compare", responses=ERRORS)
    async def compare() -> Comparison:
        """The comparison named at start-up (``--compare``): its table and the whole results.json."""
        if compare_results is None:
            raise ApiError(404, "no comparison: start the server with --compare DIR (a directory `unisr compare` wrote)")
        plot = PLOT_URL if (compare_dir / PLOT_FILE).is_file() else None
        return comparison(compare_results, plot)

    @app.get(PLOT_URL, responses=ERRORS, response_class=FileResponse)
    async def tradeoff_plot() -> FileResponse:
        if compare_dir is None or not (compare_dir / PLOT_FILE).is_file():
            raise ApiError(404, f"no {PLOT_FILE}: start the server with --compare DIR of a comparison that has a plot")
        return FileResponse(compare_dir / PLOT_FILE, media_type="image/png")

    return app


def warm_up(retriever: GenerativeRetriever) -> None:
    """Answer one request per task, so the query encoder and the content prior are loaded before the first client.

    The warm-up query is new on every start (a cached text would not load the encoder); it adds one entry to the
    embedding cache.
    """
    dataset = retriever.dataset
    if "search" in retriever.config.tasks:
        retriever.search(WARM_UP_QUERY.format(stamp=time.time_ns()), k=1)
    if "rec" in retriever.config.tasks and dataset.splits:
        retriever.recommend(user=dataset.splits[0].user_id, k=1)


def run_server(
    run_dir: str | Path,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    compare_dir: str | Path | None = None,
    batching: bool = True,
    max_batch: int = DEFAULT_MAX_BATCH,
    max_wait_ms: float = DEFAULT_MAX_WAIT_MS,
    threads: int = 0,
    log_level: str = "info",
    report: Callable[[str], None] = print,
) -> None:
    """Load ``run_dir`` (no training code), warm it up and serve it until interrupted; ``threads`` > 0 sets torch's threads."""
    import uvicorn  # only here: create_app works without it

    if threads > 0:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    retriever = GenerativeRetriever.load(run_dir)
    app = create_app(retriever, compare_dir, batching, max_batch, max_wait_ms)
    warm_up(retriever)
    mode = f"batching up to {max_batch} requests or {max_wait_ms:g} ms" if batching else "no batching"
    report(f"unisr serve: {run_dir} ready in {time.perf_counter() - started:.1f} s ({mode}) → http://{host}:{port}/  (API: /docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level)
