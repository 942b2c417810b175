"""Request batching: concurrent requests are gathered for a few milliseconds (or up to a batch size) and
answered by one batched beam search per task, on a single worker thread (the model is never run concurrently).
A request waits for company only under load (the previous request arrived less than the wait before it), so a lone
client is answered at once; requests arriving while the worker decodes join the next batch.

Requests decoded together share the task, ``exclude_history`` and the beam width; each is decoded with the
largest k of its group and trimmed to its own k, so its answer is the one it would get alone.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from unisr.decoder.retriever import GenerativeRetriever, Retrieved
from unisr.errors import UnisrError
from unisr.serve.defaults import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS

MS_PER_S = 1000.0

Task = Literal["search", "rec"]


@dataclass(frozen=True)
class Job:
    """One request, resolved: the history is the request's own or its user's (empty for an anonymous search)."""

    task: Task
    k: int
    history: tuple[str, ...]
    user: str | None = None
    query: str | None = None
    exclude_history: bool = True


class Answer(NamedTuple):
    results: list[Retrieved]
    batch_size: int  # requests decoded together with this one


class GroupKey(NamedTuple):
    task: Task
    exclude_history: bool
    beam: int  # beam width the request decodes with alone: max(beam_size, k)


@dataclass
class Pending:
    job: Job
    future: asyncio.Future
    arrived: float  # event-loop clock


@dataclass
class BatchStats:
    requests: int = 0
    batches: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)  # batch size → decodes of that size

    def record(self, size: int) -> None:
        self.requests += size
        self.batches += 1
        self.largest = max(self.largest, size)
        self.sizes[size] = self.sizes.get(size, 0) + 1


def decode(retriever: GenerativeRetriever, jobs: list[Job]) -> list[list[Retrieved]]:
    """One batched beam search for jobs of one group; each answer trimmed to its job's k."""
    k = max(job.k for job in jobs)
    histories = [list(job.history) for job in jobs]
    users = [job.user for job in jobs]
    if jobs[0].task == "search":
        answers = retriever.search_batch([job.query or "" for job in jobs], k, users, histories)
    else:
        answers = retriever.recommend_batch(histories, k, jobs[0].exclude_history, users)
    return [answer[: job.k] for job, answer in zip(jobs, answers, strict=True)]


class RequestBatcher:
    """``await batcher.submit(job)``; with ``max_batch=1`` every request is decoded alone (batching off)."""

    def __init__(self, retriever: GenerativeRetriever, max_batch: int = DEFAULT_MAX_BATCH, max_wait_ms: float = DEFAULT_MAX_WAIT_MS):
        if max_batch < 1 or max_wait_ms < 0:
            raise UnisrError(f"batching: max_batch={max_batch} must be ≥ 1 and max_wait_ms={max_wait_ms} ≥ 0")
        self.retriever, self.max_batch, self.max_wait_s = retriever, max_batch, max_wait_ms / MS_PER_S
        self.stats = BatchStats()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="unisr-decode")
        self._pending: list[Pending] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._collector: asyncio.Task | None = None
        self._last_arrival = -math.inf  # event-loop clock of the latest request
        self._arrival_gap = math.inf  # time between the latest two requests: a short gap means more are coming

    def group_key(self, job: Job) -> GroupKey:
        beam = max(self.retriever.config.beam_size, job.k)
        return GroupKey(job.task, job.exclude_history if job.task == "rec" else False, beam)

    async def submit(self, job: Job) -> Answer:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first request, or a new event loop (a test client's): start collecting there
            self._loop, self._wakeup, self._pending = loop, asyncio.Event(), []
            self._collector = loop.create_task(self._collect())
        future, now = loop.create_future(), loop.time()
        self._arrival_gap, self._last_arrival = now - self._last_arrival, now
        self._pending.append(Pending(job, future, now))
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
        for pending in self._pending:
            if not pending.future.done():
                pending.future.set_exception(UnisrError("the server is shutting down: send the request again"))
        self._worker.shutdown(wait=False, cancel_futures=True)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        idle_since = loop.time()  # when the worker last finished
        while True:
            await self._wakeup.wait()
            if not self._pending:
                self._wakeup.clear()
                continue
            # Under load, wait at most max_wait (from the oldest arrival, or from the end of the last decode when the
            # requests queued during it) for company: clients answered by the last batch come back within it.
            delay = max(self._pending[0].arrived, idle_since) + self.max_wait_s - loop.time()
            if len(self._pending) < self.max_batch and delay > 0 and self._arrival_gap < self.max_wait_s:
                await asyncio.sleep(delay)
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            if not self._pending:
                self._wakeup.clear()
            groups: dict[GroupKey, list[Pending]] = defaultdict(list)
            for pending in batch:
                groups[self.group_key(pending.job)].append(pending)
            for group in groups.values():
                await self._answer(group)
            idle_since = loop.time()

    async def _answer(self, group: list[Pending]) -> None:
        live = [pending for pending in group if not pending.future.done()]  # a cancelled request is not decoded
        if not live:
            return
        loop = asyncio.get_running_loop()
        try:
            answers = await loop.run_in_executor(self._worker, decode, self.retriever, [pending.job for pending in live])
        except UnisrError as error:
            if len(live) > 1:  # one bad request must not fail the others: answer them one by one
                for pending in live:
                    await self._answer([pending])
                return
            _settle(live[0].future, error=error)
            return
        except Exception as error:  # a bug: every request of the group reports it
            for pending in live:
                _settle(pending.future, error=error)
            return
        self.stats.record(len(live))
        for pending, results in zip(live, answers, strict=True):
            _settle(pending.future, Answer(results, len(live)))


def _settle(future: asyncio.Future, answer: Answer | None = None, error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(answer)
