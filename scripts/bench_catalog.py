"""Catalog scaling: prefix-trie build time and memory, and decode latency, from 10k to 1M (10M) items.

Usage (from the repository root):

    python scripts/bench_catalog.py --json runs/bench-catalog.json
    python scripts/bench_catalog.py --ten-million --device cuda --json runs/bench-catalog-gpu.json
    python scripts/bench_catalog.py --codes runs/sci-items-codes-joint --json runs/bench-catalog.json  # shape fitted to real codes
    python scripts/bench_catalog.py --sizes 300,3000 --config decoder-small --repeats 2 --batch 4 --batch-repeats 1  # smoke
    python scripts/bench_catalog.py --no-item-prior  # unguided decoding only

Each catalog is a synthetic ID table of the real length (3 residual codes in [0, 256) + a collision token)
whose prefixes are shared the way RQ codes share them: each level's code, given its prefix, is drawn from a
Zipf law over the 256 codes (exponent per level) behind a per-prefix permutation, so a few children of every
node hold most items. The default exponents are fitted to the health of the joint RQ-VAE codes of Scientific
(BENCHMARKS.md: first-level perplexity 226 of 256, 11.9% collisions at 4,344 items); ``--codes`` fits them to
a real table instead (first-level perplexity, distinct two-code prefixes, collision rate) and reports both.
Items that would need a collision token of 256 or more get another last code, so the token vocabulary (and the
model) stays that of the real layout at every size.

Per size: trie build time and the bytes of its tensors (and what padded nodes x fan-out tables would take),
resident memory with the random-weight decoder (``--config``, TIGER sizes by default) and the trie loaded, the
model's parameter count (asserted equal at every size: only the ID table and the trie grow with the catalog),
and decode latency at batch 1 and batched (beam and top k of the config), with the model and with random
log-probabilities (the beam search alone). With ``--item-prior`` (the default), also decode guided by the exact item
prior (weight 1; random unit item vectors of ``--item-dim``, each request's anchor the last history item's vector), which
scores every item of the catalog for every request: its item-vector table is the third thing that grows with the
catalog, and sizes whose table would pass ``--item-prior-gb`` skip those rows. Writes the JSON and a PNG plot beside it.
"""

from __future__ import annotations

import gc
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NamedTuple

import numpy as np
import torch
import typer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the pieces shared with bench_decode

from benchlib import CODEBOOK_SIZE, QUERY_DIM, RESIDUAL_LEVELS, cpu_model, rows, timing_barrier, unisr_inputs  # noqa: E402

from unisr.config import load_config  # noqa: E402  (unisr.api would load Lightning too)
from unisr.decoder.beam import constrained_beam_search  # noqa: E402
from unisr.decoder.config import DecoderConfig  # noqa: E402
from unisr.decoder.generate import Guide, generate  # noqa: E402
from unisr.decoder.guidance import ItemGuide  # noqa: E402
from unisr.decoder.model import SemanticIdTransformer, TokenLayout  # noqa: E402
from unisr.decoder.trie import PrefixTrie  # noqa: E402
from unisr.io import atomic_write_bytes, write_json_atomic  # noqa: E402
from unisr.tokenizer import IdTable  # noqa: E402

DEFAULT_SIZES = "10000,100000,1000000"
TEN_MILLION = 10_000_000
DEFAULT_EXPONENTS = (0.3562, 1.2234, 1.2234)  # Zipf exponent per residual level given its prefix: fit_exponents(*SCIENTIFIC, None, 0)
SCIENTIFIC = (4344, 226.0, 0.119)  # items, first-level perplexity, collision rate of Scientific's joint RQ-VAE codes
FIT_RANGE = (0.0, 4.0)  # exponents searched by bisection
FIT_STEPS = 30
MAX_REDRAWS = 100  # rounds of new last codes for items beyond the collision token's vocabulary
LARGE_BATCH = 256
WARMUP_CALLS = 3  # untimed calls before each timed series
P90 = 90
MS = 1000.0
MB = 2**20
GB = 2**30
FLOAT_BYTES = 4
MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)  # splitmix64 constants

app = typer.Typer(add_completion=False)


class TableStats(NamedTuple):
    """The prefix sharing of an ID table (residual codes only)."""

    items: int
    first_perplexity: float  # exp(entropy) of the first code over items
    nodes: tuple[int, ...]  # distinct prefixes of 1, 2, 3 codes
    collision_rate: float  # share of items whose residual codes another item shares
    max_collision_token: int


def _mix(values: np.ndarray, seed: int) -> np.ndarray:
    """A splitmix64 hash of ``values`` (uint64 arithmetic wraps)."""
    x = values.astype(np.uint64) + np.uint64((seed * MIX[0]) % 2**64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(MIX[1])
    x = (x ^ (x >> np.uint64(27))) * np.uint64(MIX[2])
    return x ^ (x >> np.uint64(31))


def _zipf(exponent: float) -> np.ndarray:
    weights = (np.arange(CODEBOOK_SIZE) + 1.0) ** -exponent
    return weights / weights.sum()


def collision_ordinals(codes: np.ndarray) -> np.ndarray:
    """Ordinal of each row among the rows with the same residual codes, in row order (IdTable's collision token)."""
    key = np.zeros(len(codes), dtype=np.int64)
    for level in range(codes.shape[1]):
        key = key * CODEBOOK_SIZE + codes[:, level]
    order = np.argsort(key, kind="stable")
    starts = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1]])
    ordinals = np.empty(len(codes), dtype=np.int64)
    ordinals[order] = np.arange(len(codes)) - np.repeat(starts, np.diff(np.r_[starts, len(codes)]))
    return ordinals


def synthetic_ids(items: int, exponents: tuple[float, ...], seed: int) -> tuple[np.ndarray, int]:
    """Seeded unique IDs ``[items, 4]`` with Zipf-shared prefixes, and how many last codes were drawn again."""
    rng = np.random.default_rng(seed)
    codes = np.empty((items, RESIDUAL_LEVELS), dtype=np.int64)
    prefix = np.zeros(items, dtype=np.int64)
    for level, exponent in enumerate(exponents):
        rank = rng.choice(CODEBOOK_SIZE, size=items, p=_zipf(exponent))
        hashed = _mix(prefix, seed * RESIDUAL_LEVELS + level)
        odd = (hashed % np.uint64(CODEBOOK_SIZE // 2)).astype(np.int64) * 2 + 1  # odd factor: a bijection of the ranks
        shift = ((hashed >> np.uint64(32)) % np.uint64(CODEBOOK_SIZE)).astype(np.int64)
        codes[:, level] = (odd * rank + shift) % CODEBOOK_SIZE
        prefix = prefix * CODEBOOK_SIZE + codes[:, level]
    redrawn = 0
    for _ in range(MAX_REDRAWS):
        ordinals = collision_ordinals(codes)
        over = ordinals >= CODEBOOK_SIZE
        if not over.any():
            return np.concatenate([codes, ordinals[:, None]], axis=1), redrawn
        codes[over, -1] = rng.integers(0, CODEBOOK_SIZE, int(over.sum()))
        redrawn += int(over.sum())
    raise RuntimeError(f"{items} items do not fit {CODEBOOK_SIZE} items per residual code with exponents {exponents}")


def table_stats(ids: np.ndarray) -> TableStats:
    """Prefix sharing of ``ids [n, levels + 1]``."""
    counts = np.bincount(ids[:, 0])
    share = counts[counts > 0] / len(ids)
    key, nodes = np.zeros(len(ids), dtype=np.int64), []
    for level in range(ids.shape[1] - 1):
        key = key * (int(ids[:, level].max()) + 1) + ids[:, level]
        _, inverse, group = np.unique(key, return_inverse=True, return_counts=True)
        nodes.append(len(group))
    return TableStats(
        items=len(ids),
        first_perplexity=float(np.exp(-(share * np.log(share)).sum())),
        nodes=tuple(nodes),
        collision_rate=float((group[inverse.reshape(-1)] > 1).mean()),
        max_collision_token=int(ids[:, -1].max()),
    )


def _bisect(measure: Callable[[float], float], target: float, increasing: bool) -> float:
    """The exponent in FIT_RANGE where ``measure`` (monotone) meets ``target``."""
    low, high = FIT_RANGE
    for _ in range(FIT_STEPS):
        middle = (low + high) / 2
        if (measure(middle) < target) == increasing:
            low = middle
        else:
            high = middle
    return round((low + high) / 2, 4)


def fit_exponents(items: int, perplexity: float, collision_rate: float, level2_nodes: int | None, seed: int) -> tuple[float, ...]:
    """Exponents whose table of ``items`` has this first-level perplexity, these distinct 2-code prefixes (None: the
    last two levels share one exponent) and this collision rate; one level after the other, by bisection."""
    first = _bisect(lambda a: table_stats(synthetic_ids(items, (a, 0.0, 0.0), seed)[0]).first_perplexity, perplexity, False)
    if level2_nodes is None:
        shared = _bisect(lambda a: table_stats(synthetic_ids(items, (first, a, a), seed)[0]).collision_rate, collision_rate, True)
        return first, shared, shared
    second = _bisect(lambda a: table_stats(synthetic_ids(items, (first, a, 0.0), seed)[0]).nodes[1], level2_nodes, False)
    third = _bisect(lambda a: table_stats(synthetic_ids(items, (first, second, a), seed)[0]).collision_rate, collision_rate, True)
    return first, second, third


def resident_mb() -> float:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * resource.getpagesize() / MB


def padded_bytes(trie: PrefixTrie) -> int:
    """What dense ``[parents, max fan-out]`` token and node tables (two int64 per slot) would take for this trie."""
    return sum(16 * trie.num_nodes(depth - 1) * width for depth, width in enumerate(trie.max_children))


def latency(decode: Callable[[int, int], torch.Tensor], trie: PrefixTrie, size: int, calls: int, sync: Callable[[], None]) -> dict:
    """Median / p90 ms of ``calls`` calls of ``decode(start, size)`` (after warm-up); output IDs outside the table."""
    for call in range(WARMUP_CALLS):
        decode(call, 1)
    times, invalid = [], 0
    for call in range(calls):
        sync()
        started = time.perf_counter()
        ids = decode(call * size, size)
        sync()
        times.append(time.perf_counter() - started)
        live = ids[:, 0] >= 0
        invalid += int((~trie.contains(ids[live])).sum())
    return {
        "batch": size,
        "calls": calls,
        "median_ms": float(np.median(times)) * MS,
        "p90_ms": float(np.percentile(times, P90)) * MS,
        "requests_per_s": size * calls / sum(times),
        "invalid_ids": invalid,
    }


def measure_size(items: int, exponents: tuple[float, ...], options: dict, target: torch.device) -> dict:
    """Build one catalog's trie and model, and time decoding on it."""
    config, seed = options["config"], options["seed"]
    sync = timing_barrier(target)
    gc.collect()
    baseline = resident_mb()
    ids, redrawn = synthetic_ids(items, exponents, seed)
    stats = table_stats(ids)
    layout = TokenLayout((CODEBOOK_SIZE,) * RESIDUAL_LEVELS + (max(CODEBOOK_SIZE, int(ids[:, -1].max()) + 1),))
    started = time.perf_counter()
    trie = PrefixTrie.from_ids(torch.from_numpy(ids), layout.level_sizes).to(target)
    sync()
    build_s = time.perf_counter() - started
    torch.manual_seed(seed)
    model = SemanticIdTransformer(config, layout, QUERY_DIM).to(target).eval()
    parameters = sum(parameter.numel() for parameter in model.parameters())
    loaded = resident_mb()

    generator = torch.Generator().manual_seed(seed)
    pool = max(options["repeats"], options["batch"] * options["batch_repeats"], WARMUP_CALLS)
    histories = torch.randint(0, items, (pool, config.max_history), generator=generator)
    history_ids = (torch.from_numpy(ids[histories.reshape(-1).numpy()]) + torch.tensor(layout.level_offsets)).to(target)
    content = torch.randn(len(history_ids), QUERY_DIM, generator=generator).to(target)  # content of the history items only
    local = torch.arange(len(history_ids), device=target).reshape(pool, config.max_history)
    requests = unisr_inputs(local, history_ids, content)
    noise = torch.randn(pool * config.beam_size, CODEBOOK_SIZE, generator=generator).log_softmax(dim=1).to(target)
    vectors = None
    if options["item_prior"] and items * options["item_dim"] * FLOAT_BYTES <= options["item_prior_gb"] * GB:
        vectors = torch.nn.functional.normalize(torch.randn(items, options["item_dim"], generator=generator), dim=1).to(target)
    with_vectors = resident_mb()

    def model_decode(start: int, size: int) -> torch.Tensor:
        start = start % (pool - size + 1)
        return generate(model, rows(requests, start, start + size), trie, config.beam_size, config.top_k).ids.reshape(-1, trie.depth)

    def guided_decode(start: int, size: int) -> torch.Tensor:  # the exact item prior, anchored on the last history item
        start = start % (pool - size + 1)
        present = torch.ones(size, dtype=torch.bool, device=target)
        anchors = vectors[histories[start : start + size, -1].to(target)]
        guide = Guide(None, anchors.new_zeros(size, 0), present, 1.0, items=ItemGuide(vectors, anchors, present))
        batch = rows(requests, start, start + size)
        return generate(model, batch, trie, config.beam_size, config.top_k, guide=guide).ids.reshape(-1, trie.depth)

    def beam_decode(start: int, size: int) -> torch.Tensor:  # random log-probabilities: the beam search and the trie alone
        def score_step(prefixes: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
            return noise[: len(prefixes)]

        return constrained_beam_search(score_step, trie, size, config.beam_size, config.top_k).ids.reshape(-1, trie.depth)

    decode = {}
    decoders = (("model", model_decode), ("beam_only", beam_decode)) + ((("item_prior", guided_decode),) if vectors is not None else ())
    with torch.inference_mode():
        for name, function in decoders:
            plan = ((1, options["repeats"]), (options["batch"], options["batch_repeats"]))
            decode[name] = [latency(function, trie, size, calls, sync) for size, calls in plan]
    row = {
        "items": items,
        "redrawn_last_codes": redrawn,
        "table": stats._asdict(),
        "trie_build_s": build_s,
        "trie_bytes": trie.nbytes(),
        "id_table_bytes": trie.ids.numel() * trie.ids.element_size(),
        "padded_tables_bytes": padded_bytes(trie),
        "max_children": list(trie.max_children),
        "layout_size": layout.size,
        "parameters": parameters,
        "parameter_bytes": sum(p.numel() * p.element_size() for p in model.parameters()),
        "rss_before_mb": baseline,
        "rss_loaded_mb": loaded,
        "item_vector_bytes": None if vectors is None else vectors.numel() * vectors.element_size(),
        "rss_with_item_vectors_mb": with_vectors if vectors is not None else None,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # kB on Linux; cumulative over sizes
        "cuda_allocated_mb": torch.cuda.memory_allocated(target) / MB if target.type == "cuda" else None,
        "decode": decode,
    }
    return row  # the trie, model and requests go with this frame, before the next size is built


def write_plot(report: dict, path: Path) -> None:
    """Build time, memory and latency against the catalog size (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    sizes = [row["items"] for row in report["sizes"]]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    axes[0].plot(sizes, [row["trie_build_s"] for row in report["sizes"]], "o-")
    axes[0].set_ylabel("trie build (s)")
    for key, label in (("trie_bytes", "trie tensors"), ("padded_tables_bytes", "padded tables (not built)"), ("parameter_bytes", "model")):
        axes[1].plot(sizes, [row[key] / MB for row in report["sizes"]], "o-", label=label)
    axes[1].plot(sizes, [row["rss_loaded_mb"] for row in report["sizes"]], "s--", label="resident (process)")
    axes[1].set_ylabel("MB")
    guided = [row for row in report["sizes"] if "item_prior" in row["decode"]]
    if guided:
        axes[1].plot([row["items"] for row in guided], [row["item_vector_bytes"] / MB for row in guided], "d-.", label="item vectors")
    for name, style in (("model", "o-"), ("beam_only", "^:"), ("item_prior", "d-.")):
        measured = [row for row in report["sizes"] if name in row["decode"]]
        for position, label in ((0, "batch 1"), (1, f"batch {report['batch']}")):
            values = [row["decode"][name][position]["median_ms"] for row in measured]
            if values:
                axes[2].plot([row["items"] for row in measured], values, style, label=f"{name.replace('_', ' ')}, {label}")
    axes[2].set_ylabel("median latency per call (ms)")
    for axis, title in zip(axes, ("build", "memory", f"decode (beam {report['beam_size']}, top {report['top_k']})"), strict=True):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("items")
        axis.set_title(title)
        axis.grid(alpha=0.3, which="both")
        if axis is not axes[0]:
            axis.legend(fontsize=7)
    figure.suptitle(f"catalog scaling, device {report['device']}")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


@app.command()
def main(
    sizes: Annotated[str, typer.Option(help="Comma-separated catalog sizes.")] = DEFAULT_SIZES,
    ten_million: Annotated[bool, typer.Option("--ten-million/--no-ten-million", help="Also 10M items (several GB).")] = False,
    repeats: Annotated[int, typer.Option(min=1, help="Timed batch-1 calls per size.")] = 20,
    batch: Annotated[int, typer.Option(min=2, help="Requests per call in the batched rows.")] = LARGE_BATCH,
    batch_repeats: Annotated[int, typer.Option(min=1, help="Timed batched calls per size.")] = 3,
    config: Annotated[str, typer.Option(help="Decoder config name or path (model sizes, beam, top k).")] = "decoder",
    codes: Annotated[Path | None, typer.Option(help="Fit the prefix sharing to the ID table of this codes directory.")] = None,
    exponents: Annotated[str | None, typer.Option(help="Or set the 3 Zipf exponents (comma-separated; 0 = uniform codes).")] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch intra-op threads (0 = torch default).")] = 0,
    item_prior: Annotated[bool, typer.Option("--item-prior/--no-item-prior", help="Also decode guided by the exact item prior.")] = True,
    item_dim: Annotated[int, typer.Option(min=1, help="Width of the item vectors of the item prior (MiniLM: 384).")] = QUERY_DIM,
    item_prior_gb: Annotated[
        float, typer.Option(min=0.0, help="Largest float32 item-vector table (GiB) of the item-prior rows; larger catalogs skip them.")
    ] = 4.0,
    seed: Annotated[int, typer.Option(help="Seed of IDs, requests and weights.")] = 0,
    json_path: Annotated[Path, typer.Option("--json", help="Where the JSON goes (the PNG plot goes beside it).")] = Path(
        "runs/bench-catalog.json"
    ),
):
    """Trie build time and memory, resident memory and decode latency against the catalog size."""
    wall_started = time.perf_counter()
    if threads > 0:
        torch.set_num_threads(threads)
    counts = [int(size) for size in sizes.split(",") if size.strip()] + ([TEN_MILLION] if ten_million else [])
    if not counts or min(counts) < 2:
        raise typer.BadParameter("catalog sizes must be at least 2", param_hint="--sizes")
    calibration: dict = {"source": "Scientific joint RQ-VAE health (BENCHMARKS.md)", "target": SCIENTIFIC}
    shape, items_at_target = DEFAULT_EXPONENTS, SCIENTIFIC[0]
    if exponents is not None:
        shape = tuple(float(value) for value in exponents.split(","))
        if len(shape) != RESIDUAL_LEVELS or min(shape) < 0:
            raise typer.BadParameter(f"give {RESIDUAL_LEVELS} exponents, each at least 0", param_hint="--exponents")
        calibration = {"source": "--exponents"}
    elif codes is not None:
        real_ids = IdTable.load(codes / "id_table.csv").semantic_ids
        if real_ids.shape[1] != RESIDUAL_LEVELS + 1 or int(real_ids[:, :-1].max()) >= CODEBOOK_SIZE:
            expected = f"IDs of {RESIDUAL_LEVELS} codes below {CODEBOOK_SIZE} and a collision token"
            raise typer.BadParameter(f"expected {expected}", param_hint="--codes")
        real = table_stats(real_ids)
        shape, items_at_target = fit_exponents(real.items, real.first_perplexity, real.collision_rate, real.nodes[1], seed), real.items
        calibration = {"source": str(codes), "real": real._asdict()}
    calibration["exponents"] = list(shape)
    calibration["synthetic"] = table_stats(synthetic_ids(items_at_target, shape, seed)[0])._asdict()
    options = {"config": load_config(DecoderConfig, config), "seed": seed, "repeats": repeats, "batch": batch}
    options.update(batch_repeats=batch_repeats, item_prior=item_prior, item_dim=item_dim, item_prior_gb=item_prior_gb)
    target = torch.device(device)
    warm = torch.from_numpy(synthetic_ids(64, shape, seed)[0])
    PrefixTrie.from_ids(warm, (CODEBOOK_SIZE,) * (RESIDUAL_LEVELS + 1)).to(target)  # first-call costs stay out of the timings
    results = []
    for items in sorted(counts):
        results.append(measure_size(items, shape, options, target))
        typer.echo(f"  measured {items:,} items ({time.perf_counter() - wall_started:.0f} s)", err=True)
    parameters = {row["parameters"] for row in results}
    assert len(parameters) == 1, f"the model's parameter count changed with the catalog: {sorted(parameters)}"
    report = {
        "sizes": results,
        "calibration": calibration,
        "config": config,
        "beam_size": options["config"].beam_size,
        "top_k": options["config"].top_k,
        "batch": batch,
        "parameters": parameters.pop(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": cpu_model(),
        "gpu": torch.cuda.get_device_name(target) if target.type == "cuda" else None,
        "wall_s": time.perf_counter() - wall_started,
    }
    print_report(report)
    write_json_atomic(json_path, report)
    write_plot(report, json_path.with_suffix(".png"))
    typer.echo(f"\n→ {json_path} and {json_path.with_suffix('.png')}")


def print_report(report: dict) -> None:
    """The markdown table and the calibration line."""
    calibration = report["calibration"]
    synthetic = calibration["synthetic"]
    typer.echo(
        f"\nexponents {calibration['exponents']} ({calibration['source']}): at {synthetic['items']:,} items first-level perplexity "
        f"{synthetic['first_perplexity']:.0f}, prefixes {synthetic['nodes']}, collisions {synthetic['collision_rate']:.1%}, "
        f"max collision token {synthetic['max_collision_token']}"
    )
    if "real" in calibration:
        real = calibration["real"]
        typer.echo(
            f"real table: perplexity {real['first_perplexity']:.0f}, prefixes {real['nodes']}, collisions {real['collision_rate']:.1%}"
        )
    settings = f"beam {report['beam_size']}, top {report['top_k']}, device {report['device']}"
    typer.echo(f"\n{report['parameters']:,} parameters at every size; {settings}\n")
    typer.echo(
        "| items | prefixes (1/2/3 codes) | collisions | trie build s | trie MB | padded tables MB | resident MB "
        f"| batch 1 ms | batch {report['batch']} ms | beam only, batch 1 ms | beam only, batch {report['batch']} ms "
        f"| item vectors MB | item prior, batch 1 ms | item prior, batch {report['batch']} ms | invalid IDs |"
    )
    typer.echo("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in report["sizes"]:
        model, beam, guided = row["decode"]["model"], row["decode"]["beam_only"], row["decode"].get("item_prior")
        invalid = sum(cell["invalid_ids"] for cell in model + beam + (guided or []))
        prior = "| — | — | —"
        if guided is not None:
            prior = f"| {row['item_vector_bytes'] / MB:.0f} | {guided[0]['median_ms']:.1f} | {guided[1]['median_ms']:.1f}"
        typer.echo(
            f"| {row['items']:,} | {'/'.join(f'{n:,}' for n in row['table']['nodes'])} | {row['table']['collision_rate']:.1%} "
            f"| {row['trie_build_s']:.2f} | {row['trie_bytes'] / MB:.1f} | {row['padded_tables_bytes'] / MB:.1f} "
            f"| {row['rss_loaded_mb']:.0f} | {model[0]['median_ms']:.1f} | {model[1]['median_ms']:.1f} | {beam[0]['median_ms']:.2f} "
            f"| {beam[1]['median_ms']:.2f} {prior} | {invalid} |"
        )
    typer.echo(f"\ncpu: {report['cpu']}, {report['torch_threads']} torch threads, torch {report['torch']}, gpu {report['gpu']}")
    typer.echo(f"wall {report['wall_s']:.0f} s (after imports)")


if __name__ == "__main__":
    app()
