"""Benchmark of decoding and training speed: unisr's constrained beam search vs Hugging Face ``generate``.

Usage (from the repository root; results land in BENCHMARKS.md by hand):

    python scripts/bench_decode.py --json runs/bench-decode.json
    python scripts/bench_decode.py --synthetic-items 4344 --repeats 20 --threads 1  # a Scientific-like ID table, no codes needed
    python scripts/bench_decode.py --items 2000 --repeats 2 --batch 8 --hf-batch-requests 8 --train-steps 2 --train-batch 8  # smoke

Both decoders get random weights (decode speed does not depend on training), the TIGER sizes of
configs/decoder.yaml and a synthetic, seeded table of ``--items`` unique semantic IDs (3 residual
codes in [0, 256) + a collision token). unisr decodes with ``unisr.decoder.generate.generate``; the
peer baseline is a T5 of equal size decoding with ``generate(num_beams=..., prefix_allowed_tokens_fn=...)``
over a Python dict of prefixes, as LC-Rec, LETTER and GenSAR do. Rec-task requests, 20-item histories;
T5's input is exactly as long as unisr's encoder input (task token, the masked query slots, the history).
Also times training steps (forward + backward + AdamW) of unisr's model, one target per row (``scripts/bench_train.py``
compares that with every-position training on real data).

unisr decodes incrementally (a self-attention cache, one position per depth); the same calls are decoded again with
``generate(..., incremental=False)``, the reference path that recomputes every prefix (the decoder before the cache),
and the two top-K lists of every request must match (items, IDs, order; scores up to float rounding), else the script
exits with code 1 after its report. The report gives each row's achieved GFLOP/s (the model's FLOPs per request,
counted from its shapes, × requests/s) beside the peak of a large float32 matmul measured in the same run.
``--synthetic-items`` draws the ID table with bench_catalog's generator, fitted to the Scientific joint codes.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NamedTuple

import numpy as np
import torch
import transformers
import typer

from unisr import api
from unisr.decoder.beam import BeamResult
from unisr.decoder.config import DecoderConfig
from unisr.decoder.generate import generate
from unisr.decoder.model import EncoderInput, SemanticIdTransformer, Targets, TokenLayout
from unisr.decoder.trie import PrefixTrie
from unisr.tokenizer import IdTable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the pieces shared with bench_catalog
from bench_catalog import DEFAULT_EXPONENTS, synthetic_ids  # noqa: E402
from benchlib import CODEBOOK_SIZE, QUERY_DIM, RESIDUAL_LEVELS, cpu_model, rows, timing_barrier, unisr_inputs  # noqa: E402

BEAUTY_ITEMS = 12101  # catalog size of Amazon Beauty
LARGE_BATCH = 256  # default requests per call in the batched rows, and examples per training step
WARMUP_CALLS = 3  # untimed calls before each timed series
WARMUP_TRAIN_STEPS = 2  # untimed training steps
P90 = 90  # percentile of the tail latency column
MS = 1000.0
SCORE_TOLERANCE = 1e-4  # largest |score difference| between the incremental and the reference path that counts as the same
PEAK_SIZE = 2048  # square float32 matmul timed for the machine's peak
PEAK_CALLS = 5

app = typer.Typer(add_completion=False)


def id_table(items: int, seed: int) -> np.ndarray:
    """Seeded ``[items, 4]`` unique IDs: random residual codes, then the rank among items sharing them."""
    codes = np.random.default_rng(seed).integers(0, CODEBOOK_SIZE, size=(items, RESIDUAL_LEVELS))
    seen: Counter[tuple[int, ...]] = Counter()
    collision = np.empty(items, dtype=np.int64)
    for row, prefix in enumerate(map(tuple, codes.tolist())):
        collision[row] = seen[prefix]
        seen[prefix] += 1
    return np.concatenate([codes, collision[:, None]], axis=1)


def prefix_dict(ids: np.ndarray, offsets: tuple[int, ...]) -> dict[tuple[int, ...], list[int]]:
    """Peer-style constraint table: generated prefix (global tokens) → sorted allowed next tokens."""
    allowed: dict[tuple[int, ...], set[int]] = {}
    for row in (ids + np.array(offsets)).tolist():
        for depth, token in enumerate(row):
            allowed.setdefault(tuple(row[:depth]), set()).add(token)
    return {prefix: sorted(tokens) for prefix, tokens in allowed.items()}


class HfInput(NamedTuple):
    input_ids: torch.Tensor  # [B, S] token ids
    attention_mask: torch.Tensor  # [B, S] 1 where attended


def hf_inputs(histories: torch.Tensor, id_tokens: torch.Tensor, config: DecoderConfig) -> HfInput:
    """T5 ``input_ids`` / ``attention_mask`` as long as unisr's encoder input: task, masked query slots, history."""
    history = id_tokens[histories][:, :, 0]  # one token per history item, as unisr's encoder
    task = torch.full((len(history), 1), TokenLayout.TASK["rec"], dtype=torch.long, device=history.device)
    query_slots = torch.full((len(history), config.query_tokens), TokenLayout.PAD, dtype=torch.long, device=history.device)
    input_ids = torch.cat([task, query_slots, history], dim=1)
    return HfInput(input_ids, (input_ids != TokenLayout.PAD).long())


def hf_model(config: DecoderConfig, layout: TokenLayout) -> transformers.T5ForConditionalGeneration:
    """A randomly initialised T5 of unisr's size and vocabulary."""
    t5 = transformers.T5Config(
        vocab_size=layout.size,
        d_model=config.d_model,
        d_kv=config.head_dim,
        num_heads=config.heads,
        d_ff=config.feed_forward,
        num_layers=config.encoder_layers,
        num_decoder_layers=config.decoder_layers,
        dropout_rate=config.dropout,
        feed_forward_proj="gelu",
        pad_token_id=TokenLayout.PAD,
        decoder_start_token_id=TokenLayout.PAD,
        eos_token_id=TokenLayout.START,
    )
    return transformers.T5ForConditionalGeneration(t5)


def count_invalid(ids: torch.Tensor, valid: set[tuple[int, ...]]) -> int:
    """Output IDs ``[M, T]`` (level-local tokens) that are no row of the ID table."""
    return sum(tuple(row) not in valid for row in ids.tolist())


def measure(
    decode: Callable, batch: NamedTuple, size: int, calls: int, valid: set, sync: Callable[[], None], outputs: list | None = None
) -> dict:
    """Warm up (batch-1 calls), then time ``calls`` calls of ``size`` requests each; requests/s, latency per call, invalid IDs.

    ``decode`` returns the IDs ``[M, T]`` or a BeamResult (kept in ``outputs`` when given).
    """
    for call in range(WARMUP_CALLS):
        decode(rows(batch, call, call + 1))
    times, invalid = [], 0
    for call in range(calls):
        start = (call * size) % (len(batch[0]) - size + 1)
        part = rows(batch, start, start + size)
        sync()
        started = time.perf_counter()
        output = decode(part)
        sync()
        times.append(time.perf_counter() - started)
        if isinstance(output, BeamResult):
            if outputs is not None:
                outputs.append(output)
            output = output.ids.reshape(-1, output.ids.shape[-1])
        invalid += count_invalid(output, valid)
    return {
        "batch": size,
        "calls": calls,
        "requests_per_s": size * calls / sum(times),
        "median_ms": float(np.median(times)) * MS,
        "p90_ms": float(np.percentile(times, P90)) * MS,
        "invalid_ids": invalid,
    }


def compare_top_k(fast: list[BeamResult], reference: list[BeamResult]) -> dict:
    """Requests whose top-K lists agree (items and IDs in the same order, scores within ``SCORE_TOLERANCE``)."""
    same, requests, largest = 0, 0, 0.0
    for ours, theirs in zip(fast, reference, strict=True):
        difference = (ours.scores - theirs.scores).abs().nan_to_num(0.0).amax(dim=1)  # -inf == -inf: empty slots agree
        agree = (ours.items == theirs.items).all(1) & (ours.ids == theirs.ids).flatten(1).all(1) & (difference <= SCORE_TOLERANCE)
        same, requests, largest = same + int(agree.sum()), requests + len(agree), max(largest, float(difference.max()))
    return {"requests": requests, "identical": same, "max_abs_score_difference": largest}


def flops_per_request(config: DecoderConfig, layout: TokenLayout, encoder_length: int, history: int) -> float:
    """FLOPs (2 per multiply-add) of one request's incremental decode, counted from the model's shapes: the encoder, the
    cross-attention keys/values, then one position per depth for 1 row (depth 0) and ``beam_size`` rows after, each through
    every decoder layer (projections, feed-forward, attention to the cached positions and the encoder) and its level's
    slice of the output layer. Embedding lookups, norms and softmaxes are left out."""
    d, inner, ff = config.d_model, config.heads * config.head_dim, config.feed_forward
    block = 2 * (d * 3 * inner + inner * d + 2 * d * ff)  # self-attention projections and feed-forward, per token
    encoder = config.encoder_layers * encoder_length * (block + 2 * 2 * encoder_length * inner)
    inputs = 2 * QUERY_DIM * config.query_tokens * d + (2 * history * QUERY_DIM * d if config.history_content else 0)
    cross = config.decoder_layers * encoder_length * 2 * d * 2 * inner
    decoder = 0
    for depth in range(layout.id_length):
        rows = 1 if depth == 0 else config.beam_size
        per_row = config.decoder_layers * (block + 2 * 2 * d * inner + 2 * 2 * (depth + 1 + encoder_length) * inner)
        decoder += rows * (per_row + 2 * d * layout.level_sizes[depth])
    return float(encoder + inputs + cross + decoder)


def matmul_peak_gflops(device: torch.device, sync: Callable[[], None]) -> float:
    """GFLOP/s of the best of ``PEAK_CALLS`` float32 ``PEAK_SIZE``-square matmuls (after a warm-up), with this run's threads."""
    left, right = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device), torch.randn(PEAK_SIZE, PEAK_SIZE, device=device)
    left @ right
    best = float("inf")
    for _ in range(PEAK_CALLS):
        sync()
        started = time.perf_counter()
        left @ right
        sync()
        best = min(best, time.perf_counter() - started)
    return 2 * PEAK_SIZE**3 / best / 1e9


def train_examples_per_s(
    layout: TokenLayout,
    id_tokens: torch.Tensor,
    item_vectors: torch.Tensor,
    histories: torch.Tensor,
    size: int,
    steps: int,
    seed: int,
    config_name: str = "decoder",
) -> float:
    """Training examples/s of unisr's model, one target per row: forward + backward + AdamW on ``size`` examples."""
    config = api.decoder_config(config_name)
    torch.manual_seed(seed)
    model = SemanticIdTransformer(config, layout, QUERY_DIM).to(id_tokens.device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    batch = unisr_inputs(histories[:size], id_tokens, item_vectors)
    rows = torch.arange(len(batch.task), device=id_tokens.device)
    target = Targets(rows, torch.full_like(rows, histories.shape[1]), id_tokens[histories[:size, 0]])  # any valid IDs will do

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(batch, target).backward()
        optimizer.step()

    for _ in range(WARMUP_TRAIN_STEPS):
        step()
    sync = timing_barrier(id_tokens.device)
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return size * steps / (time.perf_counter() - started)


@app.command()
def main(
    items: Annotated[int, typer.Option(min=2, help="Items in the synthetic ID table.")] = BEAUTY_ITEMS,
    repeats: Annotated[int, typer.Option(min=1, help="Timed batch-1 calls per decoder.")] = 30,
    batch_repeats: Annotated[int, typer.Option(min=1, help="Timed large-batch calls of unisr.")] = 3,
    batch: Annotated[int, typer.Option(min=2, help="Requests per call in the batched rows.")] = LARGE_BATCH,
    hf_batch_requests: Annotated[
        int, typer.Option(min=1, help="Requests in HF's one timed batched call (capped at --batch).")
    ] = LARGE_BATCH,
    train_steps: Annotated[int, typer.Option(min=1, help="Timed training steps per history token mode.")] = 10,
    train_batch: Annotated[int, typer.Option(min=1, help="Examples per training step.")] = LARGE_BATCH,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    threads: Annotated[int, typer.Option(help="torch intra-op threads (0 = torch default).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of IDs, requests and weights.")] = 0,
    config: Annotated[str, typer.Option(help="Decoder config name or path (model sizes, beam, top k).")] = "decoder",
    codes: Annotated[Path | None, typer.Option(help="Use the real ID table of this codes directory instead of random IDs.")] = None,
    synthetic_items: Annotated[
        int | None, typer.Option(min=2, help="Or this many IDs from bench_catalog's generator (Scientific-like prefix sharing).")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the numbers as JSON here.")] = None,
):
    """Decode requests/s and latency of unisr vs HF generate, and unisr training examples/s."""
    wall_started = time.perf_counter()
    if threads > 0:
        torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    target = torch.device(device)
    sync = timing_barrier(target)
    config_name, config = config, api.decoder_config(config)
    if codes is not None and synthetic_items is not None:
        raise typer.BadParameter("give --codes or --synthetic-items, not both", param_hint="--synthetic-items")
    if codes is not None:
        ids, table = IdTable.load(codes / "id_table.csv").semantic_ids, str(codes)
    elif synthetic_items is not None:
        ids, table = synthetic_ids(synthetic_items, DEFAULT_EXPONENTS, seed)[0], "synthetic, Scientific-like (bench_catalog)"
    else:
        ids, table = id_table(items, seed), "random codes"
    items = len(ids)
    valid = set(map(tuple, ids.tolist()))
    layout = TokenLayout((CODEBOOK_SIZE,) * RESIDUAL_LEVELS + (max(CODEBOOK_SIZE, int(ids[:, -1].max()) + 1),))
    id_tokens = (torch.from_numpy(ids) + torch.tensor(layout.level_offsets)).to(target)
    item_vectors = torch.randn(len(ids), QUERY_DIM, generator=torch.Generator().manual_seed(seed)).to(target)  # content stand-ins
    trie = PrefixTrie.from_ids(torch.from_numpy(ids), layout.level_sizes).to(target)
    generator = torch.Generator().manual_seed(seed)
    pool = max(repeats, batch, train_batch, WARMUP_CALLS)
    histories = torch.randint(0, items, (pool, config.max_history), generator=generator).to(target)

    torch.manual_seed(seed)
    model = SemanticIdTransformer(config, layout, QUERY_DIM).to(target).eval()
    hf = hf_model(config, layout).to(target).eval()
    unisr_batch, hf_batch = unisr_inputs(histories, id_tokens, item_vectors), hf_inputs(histories, id_tokens, config)
    with torch.inference_mode():
        encoder_length = model.encode(rows(unisr_batch, 0, 1)).states.shape[1]
    if hf_batch.input_ids.shape[1] != encoder_length:
        raise RuntimeError(f"encoder lengths differ: unisr {encoder_length}, HF {hf_batch.input_ids.shape[1]}")

    def unisr_decode(batch: EncoderInput) -> BeamResult:
        return generate(model, batch, trie, config.beam_size, config.top_k)

    def reference_decode(batch: EncoderInput) -> BeamResult:
        return generate(model, batch, trie, config.beam_size, config.top_k, incremental=False)

    allowed = prefix_dict(ids, layout.level_offsets)
    offsets = torch.tensor(layout.level_offsets, device=target)

    def allowed_tokens(batch_id: int, input_ids: torch.Tensor) -> list[int]:
        return allowed.get(tuple(input_ids.tolist()[1:]), [])  # drop the decoder start token

    def hf_decode(batch: HfInput) -> torch.Tensor:
        sequences = hf.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            num_beams=config.beam_size,
            num_return_sequences=config.top_k,
            max_new_tokens=layout.id_length,
            do_sample=False,
            prefix_allowed_tokens_fn=allowed_tokens,
        )
        return sequences[:, 1:] - offsets

    hf_large = min(hf_batch_requests, batch)
    results, reference_rows, outputs = [], [], {"unisr": [], "unisr-reference": []}
    with torch.inference_mode():
        for name, decode, inputs, plan in (
            ("unisr", unisr_decode, unisr_batch, ((1, repeats), (batch, batch_repeats))),
            ("unisr-reference", reference_decode, unisr_batch, ((1, repeats), (batch, batch_repeats))),
            ("hf-generate", hf_decode, hf_batch, ((1, repeats), (hf_large, 1))),
        ):
            for size, calls in plan:
                row = {"decoder": name, **measure(decode, inputs, size, calls, valid, sync, outputs.get(name))}
                (reference_rows if name == "unisr-reference" else results).append(row)
                typer.echo(f"  measured {name} at batch {size} ({time.perf_counter() - wall_started:.0f} s)", err=True)
        peak = matmul_peak_gflops(target, sync)
    flops = flops_per_request(config, layout, encoder_length, config.max_history)
    for row in results[:2]:
        row["gflops_per_s"] = flops * row["requests_per_s"] / 1e9
    speedups = {
        f"{unisr_row['batch']} vs {hf_row['batch']}": unisr_row["requests_per_s"] / hf_row["requests_per_s"]
        for unisr_row, hf_row in zip(results[:2], results[2:], strict=True)
    }
    reference = {
        "top_k": compare_top_k(outputs["unisr"], outputs["unisr-reference"]),
        "decode": reference_rows,
        "speedup_unisr_over_reference": {
            str(ours["batch"]): ours["requests_per_s"] / theirs["requests_per_s"]
            for ours, theirs in zip(results[:2], reference_rows, strict=True)
        },
    }
    training = {
        "one target per row": train_examples_per_s(layout, id_tokens, item_vectors, histories, train_batch, train_steps, seed, config_name)
    }
    report = {
        "decode": results,
        "speedup_unisr_over_hf": speedups,
        "train_examples_per_s": training,
        "train_batch": train_batch,
        "reference_check": reference,
        "flops_per_request": flops,
        "matmul_peak_gflops_per_s": peak,
        "items": items,
        "id_table": table,
        "config": config_name,
        "encoder_length": encoder_length,
        "beam_size": config.beam_size,
        "top_k": config.top_k,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu": cpu_model(),
        "gpu": torch.cuda.get_device_name(target) if target.type == "cuda" else None,
        "wall_s": time.perf_counter() - wall_started,
    }
    print_report(report)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
    check = reference["top_k"]
    if check["identical"] != check["requests"]:
        differing = check["requests"] - check["identical"]
        typer.echo(f"the incremental decoder's top-K lists differ from the reference path's for {differing} requests", err=True)
        raise typer.Exit(1)


def print_report(report: dict) -> None:
    """The markdown tables and the environment lines."""
    typer.echo(
        f"\n{report['items']} items ({report['id_table']}), beam {report['beam_size']}, top {report['top_k']}, "
        f"encoder length {report['encoder_length']}, device {report['device']}\n"
    )
    peak, check = report["matmul_peak_gflops_per_s"], report["reference_check"]
    typer.echo("| decoder | batch | requests/s | median latency ms | p90 ms | invalid IDs | GFLOP/s (of matmul peak) |")
    typer.echo("|---|---|---|---|---|---|---|")
    for row in report["decode"] + check["decode"]:
        rate = f"{row['gflops_per_s']:.1f} ({row['gflops_per_s'] / peak:.0%})" if "gflops_per_s" in row else ""
        typer.echo(
            f"| {row['decoder']} | {row['batch']} | {row['requests_per_s']:.1f} | {row['median_ms']:.1f} | {row['p90_ms']:.1f} "
            f"| {row['invalid_ids']} | {rate} |"
        )
    typer.echo(
        "\nspeed-up unisr / HF (requests/s, unisr batch vs HF batch): "
        + ", ".join(f"{pair}: {ratio:.1f}x" for pair, ratio in report["speedup_unisr_over_hf"].items())
    )
    typer.echo(
        "speed-up unisr / reference path (full recompute, same batch): "
        + ", ".join(f"batch {size}: {ratio:.1f}x" for size, ratio in check["speedup_unisr_over_reference"].items())
    )
    top_k = check["top_k"]
    typer.echo(
        f"top-K lists identical to the reference path's: {top_k['identical']} of {top_k['requests']} requests "
        f"(largest score difference {top_k['max_abs_score_difference']:.1e})"
    )
    typer.echo(
        f"model FLOPs per request (from its shapes): {report['flops_per_request'] / 1e9:.3f} GFLOP; "
        f"float32 matmul peak in this run: {peak:.1f} GFLOP/s"
    )
    typer.echo(f"\n| training | examples/s (batch {report['train_batch']}) |\n|---|---|")
    for mode, rate in report["train_examples_per_s"].items():
        typer.echo(f"| {mode} | {rate:.0f} |")
    typer.echo(
        f"\ncpu: {report['cpu']}, {report['torch_threads']} torch threads, torch {report['torch']}, "
        f"transformers {report['transformers']}, gpu {report['gpu']}, wall {report['wall_s']:.0f} s (after imports)"
    )


if __name__ == "__main__":
    app()
