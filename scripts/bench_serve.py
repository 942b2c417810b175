"""Throughput of `unisr serve` with and without request batching, at several client concurrencies.

Usage (from the repository root; results land in BENCHMARKS.md by hand):

    python scripts/bench_serve.py unisr-quickstart/comparison/runs/joint-rqvae-joint-s0 --json runs/bench-serve.json  # full size
    python scripts/bench_serve.py RUN_DIR --requests 20 --concurrency 1,4  # smoke

The server runs as a subprocess on a free loopback port, once batched and once with --no-batching, loading the run
the way `unisr serve` does (no training code). For each app and concurrency, ``--requests`` requests (a seeded mix of
searches from the dataset's test queries, with their users, and recommendations for its users) are fired by an
async HTTP client keeping that many in flight, after a short warm-up; the default client is a lean keep-alive
HTTP/1.1 client over asyncio streams (``--client httpx`` uses httpx, whose own CPU cost caps what a small machine
can measure). Reported: requests/s, p50/p99 latency,
errors (any answer but 200), the mean number of requests decoded together, the batched/unbatched ratio of
requests/s at each concurrency, and each server's start-up time and memory.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, NamedTuple

import httpx
import numpy as np
import typer

from unisr.data.dataset import PreparedDataset
from unisr.decoder.artifact import linked_dir, read_run_manifest
from unisr.serve.defaults import DEFAULT_MAX_BATCH, DEFAULT_MAX_WAIT_MS

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 300.0  # loading a run and warming it up
POLL_S = 0.2
WARMUP_REQUESTS = 4  # per concurrency, not timed
STOP_TIMEOUT_S = 10.0
MS_PER_S = 1000.0
KB_PER_MB = 1024.0
P50, P99 = 50, 99
SERVER_CODE = (
    "import sys\n"
    "from unisr.serve.app import run_server\n"
    "run_dir, port, batching, max_batch, max_wait_ms, threads = sys.argv[1:7]\n"
    "run_server(run_dir, port=int(port), batching=batching == 'on', max_batch=int(max_batch), max_wait_ms=float(max_wait_ms),\n"
    "           threads=int(threads), log_level='warning', report=lambda message: print(message, file=sys.stderr))\n"
)

app = typer.Typer(add_completion=False)


class Request(NamedTuple):
    path: str
    body: dict


class Server(NamedTuple):
    process: subprocess.Popen
    port: int
    startup_s: float

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


class Measurement(NamedTuple):
    app: str
    concurrency: int
    requests: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    mean_batch: float


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def memory_mb(pid: int, field: str) -> float | None:
    """VmRSS (now) or VmHWM (peak) of a process from /proc, in MB; None where /proc is absent."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return round(int(line.split()[1]) / KB_PER_MB, 1)
    except OSError:
        return None
    return None


def start_server(run_dir: Path, batching: bool, max_batch: int, max_wait_ms: float, threads: int, log) -> Server:
    """Spawn the server and wait for /health (the run is loaded and warmed up before uvicorn listens)."""
    port = free_port()
    arguments = [str(run_dir), str(port), "on" if batching else "off", str(max_batch), str(max_wait_ms), str(threads)]
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", SERVER_CODE, *arguments], stdout=log, stderr=log, env=os.environ.copy())
    url = f"http://{LOOPBACK}:{port}"
    deadline = started + STARTUP_TIMEOUT_S
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the server exited with code {process.returncode}:\n{log.read().decode(errors='replace')[-4000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=POLL_S * 5).status_code == 200:
                return Server(process, port, time.perf_counter() - started)
        except httpx.TransportError:
            pass
        time.sleep(POLL_S)
    stop_server(process)
    raise SystemExit(f"the server did not answer /health within {STARTUP_TIMEOUT_S:.0f} s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def build_requests(run_dir: Path, count: int, k: int, search_share: float, seed: int) -> list[Request]:
    """A seeded mix of searches (test queries, with the user who asked) and recommendations (the dataset's users)."""
    manifest = read_run_manifest(run_dir)
    dataset = PreparedDataset.load(linked_dir(run_dir, manifest, "dataset_dir"))
    tasks = manifest.get("tasks", ["rec", "search"])
    queries = dataset.queries_in("test") if "search" in tasks else []
    users = [split.user_id for split in dataset.splits] if "rec" in tasks else []
    if not queries and not users:
        raise SystemExit(f"{run_dir}: no test queries and no users to send")
    generator = random.Random(seed)
    requests = []
    for _ in range(count):
        if queries and (not users or generator.random() < search_share):
            query = generator.choice(queries)
            body = {"query": query.text, "k": k, **({"user": query.user_id} if query.user_id else {})}
            requests.append(Request("/search", body))
        else:
            requests.append(Request("/recommend", {"user": generator.choice(users), "k": k}))
    return requests


class StreamClient:
    """A lean keep-alive HTTP/1.1 connection over asyncio streams, one request at a time. It costs the load generator
    far less CPU than a full client, so that on a small machine the server, not the client, is what gets measured."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict) -> tuple[int, dict]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        self.writer.write(head.encode() + payload)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
        data = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return int(lines[0].split()[1]), json.loads(data) if data else {}

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class HttpxClient:
    """Requests through a shared httpx.AsyncClient (a full client: heavier on the load generator's CPU)."""

    def __init__(self, session: httpx.AsyncClient):
        self.session = session

    async def post(self, path: str, body: dict) -> tuple[int, dict]:
        answer = await self.session.post(path, json=body)
        return answer.status_code, answer.json()

    async def close(self) -> None:
        return None


CLIENTS = ("stream", "httpx")
CLIENT_ERRORS = (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, httpx.HTTPError)


async def fire(
    server: Server, requests: list[Request], concurrency: int, timeout_s: float, client: str
) -> tuple[list[float], int, list[int], float]:
    """Send every request keeping ``concurrency`` in flight: (latencies of answered requests, errors, batch sizes, wall seconds)."""
    latencies, batches, errors = [], [], 0
    queue = iter(requests)

    async def worker(connection: StreamClient | HttpxClient) -> None:
        nonlocal errors
        for request in queue:
            sent = time.perf_counter()
            try:
                status, answer = await asyncio.wait_for(connection.post(request.path, request.body), timeout_s)
            except CLIENT_ERRORS:
                errors += 1
                await connection.close()
                continue
            if status != 200:
                errors += 1
                continue
            latencies.append((time.perf_counter() - sent) * MS_PER_S)
            batches.append(answer["batch_size"])
        await connection.close()

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=server.url, timeout=timeout_s, limits=limits) as session:
        connections = [StreamClient(LOOPBACK, server.port) if client == "stream" else HttpxClient(session) for _ in range(concurrency)]
        started = time.perf_counter()
        await asyncio.gather(*(worker(connection) for connection in connections))
        wall = time.perf_counter() - started
    return latencies, errors, batches, wall


def measure(name: str, server: Server, requests: list[Request], concurrency: int, timeout_s: float, client: str) -> Measurement:
    asyncio.run(fire(server, requests[:WARMUP_REQUESTS], min(concurrency, WARMUP_REQUESTS), timeout_s, client))
    latencies, errors, batches, wall = asyncio.run(fire(server, requests, concurrency, timeout_s, client))
    answered = np.array(latencies) if latencies else np.array([float("nan")])
    return Measurement(
        app=name,
        concurrency=concurrency,
        requests=len(requests),
        requests_per_s=round(len(latencies) / wall, 2),
        p50_ms=round(float(np.percentile(answered, P50)), 1),
        p99_ms=round(float(np.percentile(answered, P99)), 1),
        errors=errors,
        mean_batch=round(float(np.mean(batches)), 2) if batches else 0.0,
    )


def markdown(rows: list[Measurement], ratios: dict[int, float]) -> str:
    lines = ["| app | concurrency | requests | requests/s | p50 ms | p99 ms | errors | mean batch |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row.app} | {row.concurrency} | {row.requests:,} | {row.requests_per_s:,.1f} | {row.p50_ms:,.1f} | {row.p99_ms:,.1f} "
            f"| {row.errors} | {row.mean_batch:.1f} |"
        )
    lines.append("")
    lines.append("batched / unbatched requests/s: " + ", ".join(f"concurrency {c}: {ratio:.2f}×" for c, ratio in ratios.items()))
    return "\n".join(lines)


def parse_concurrency(value: str) -> list[int]:
    try:
        levels = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected comma-separated integers such as 1,8,32") from None
    if not levels or min(levels) < 1:
        raise typer.BadParameter(f"{value!r}: concurrencies must be positive integers")
    return levels


@app.command()
def main(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (from `unisr train`, `unisr compare` or `unisr quickstart`).")],
    requests: Annotated[int, typer.Option(min=1, help="Requests per app and concurrency.")] = 2000,
    concurrency: Annotated[str, typer.Option(help="Comma-separated numbers of requests kept in flight.")] = "1,8,32",
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Results per request.")] = 10,
    search_share: Annotated[float, typer.Option(min=0, max=1, help="Share of searches in the mix (the rest recommend).")] = 0.5,
    max_batch: Annotated[int, typer.Option(min=1, help="Batched app: requests per batched beam search.")] = DEFAULT_MAX_BATCH,
    max_wait_ms: Annotated[float, typer.Option(min=0, help="Batched app: how long a request waits for company.")] = DEFAULT_MAX_WAIT_MS,
    timeout_s: Annotated[float, typer.Option(min=1, help="Per-request timeout (a timed-out request counts as an error).")] = 120.0,
    threads: Annotated[int, typer.Option(min=0, help="Torch threads of the servers (0 = torch default).")] = 0,
    client: Annotated[str, typer.Option(help="Load generator: stream (lean keep-alive HTTP/1.1 over asyncio) or httpx.")] = "stream",
    seed: Annotated[int, typer.Option(help="Seed of the request mix.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON here.")] = None,
):
    """Requests/s and latency of the batched and the unbatched server at each concurrency."""
    levels = parse_concurrency(concurrency)
    if client not in CLIENTS:
        raise typer.BadParameter(f"--client {client!r}: choose one of {', '.join(CLIENTS)}")
    mix = build_requests(run_dir, requests, k, search_share, seed)
    rows: list[Measurement] = []
    servers: dict[str, dict] = {}
    for name, batching in (("batched", True), ("unbatched", False)):
        with tempfile.TemporaryFile() as log:
            server = start_server(run_dir, batching, max_batch, max_wait_ms, threads, log)
            try:
                servers[name] = {"startup_s": round(server.startup_s, 2), "rss_mb": memory_mb(server.process.pid, "VmRSS")}
                typer.echo(f"{name}: ready in {server.startup_s:.1f} s, {servers[name]['rss_mb']} MB", err=True)
                for level in levels:
                    rows.append(measure(name, server, mix, level, timeout_s, client))
                    typer.echo(f"  concurrency {level}: {rows[-1].requests_per_s:,.1f} requests/s, {rows[-1].errors} errors", err=True)
                servers[name]["peak_rss_mb"] = memory_mb(server.process.pid, "VmHWM")
            finally:
                stop_server(server.process)
    by_key = {(row.app, row.concurrency): row for row in rows}
    ratios = {
        level: round(by_key["batched", level].requests_per_s / max(by_key["unbatched", level].requests_per_s, 1e-9), 2) for level in levels
    }
    typer.echo(markdown(rows, ratios))
    if json_out is not None:
        report = {
            "run": str(run_dir),
            "requests": requests,
            "k": k,
            "search_share": search_share,
            "max_batch": max_batch,
            "max_wait_ms": max_wait_ms,
            "threads": threads,
            "client": client,
            "concurrency": levels,
            "servers": servers,
            "results": [row._asdict() for row in rows],
            "ratio": {str(level): ratio for level, ratio in ratios.items()},
            "errors": sum(row.errors for row in rows),
        }
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    app()
