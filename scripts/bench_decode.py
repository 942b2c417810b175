"""Benchmark of decoding and training speed: unisr's constrained beam search vs Hugging Face ``generate``.

Usage (from the repository root; results land in BENCHMARKS.md by hand):

    python scripts/bench_decode.py --json runs/bench-decode.json
    python scripts/bench_decode.py --items 2000 --repeats 2 --batch 8 --hf-batch-requests 8 --train-steps 2 --train-batch 8  # smoke

Both decoders get random weights (decode speed does not depend on training), the TIGER sizes of
configs/decoder.yaml and a synthetic, seeded table of ``--items`` unique semantic IDs (3 residual
codes in [0, 256) + a collision token). unisr decodes with ``unisr.decoder.generate.generate``; the
peer baseline is a T5 of equal size decoding with ``generate(num_beams=..., prefix_allowed_tokens_fn=...)``
over a Python dict of prefixes, as LC-Rec, LETTER and GenSAR do. Rec-task requests, 20-item histories;
T5's input is exactly as long as unisr's encoder input (task token, the masked query slots, the history).
Also times training steps (forward + backward + AdamW) of unisr's model, one target per row (``scripts/bench_train.py``
compares that with every-position training on real data).
"""

from __future__ import annotations

import json
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
from unisr.decoder.config import DecoderConfig
from unisr.decoder.generate import generate
from unisr.decoder.model import EncoderInput, SemanticIdTransformer, Targets, TokenLayout
from unisr.decoder.trie import PrefixTrie
from unisr.tokenizer import IdTable

CODEBOOK_SIZE = 256  # codes per residual level
RESIDUAL_LEVELS = 3  # residual codes per ID (a collision token follows)
QUERY_DIM = 384  # width of the frozen sentence embeddings (all-MiniLM-L6-v2); unused by rec requests
BEAUTY_ITEMS = 12101  # catalog size of Amazon Beauty
LARGE_BATCH = 256  # default requests per call in the batched rows, and examples per training step
WARMUP_CALLS = 3  # untimed calls before each timed series
WARMUP_TRAIN_STEPS = 2  # untimed training steps
P90 = 90  # percentile of the tail latency column
MS = 1000.0

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


def unisr_inputs(histories: torch.Tensor, id_tokens: torch.Tensor, item_vectors: torch.Tensor) -> EncoderInput:
    """Rec-task encoder inputs for item-index histories ``[B, N]`` (with the items' content vectors)."""
    size = len(histories)
    task = torch.full((size,), TokenLayout.TASK["rec"], dtype=torch.long, device=histories.device)
    query = torch.zeros(size, QUERY_DIM, device=histories.device)
    no_query = torch.zeros(size, dtype=torch.bool, device=histories.device)
    return EncoderInput(task, id_tokens[histories], query, no_query, None, item_vectors[histories])


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


def rows(batch: NamedTuple, start: int, stop: int) -> NamedTuple:
    """Requests ``start:stop`` of a batch (a named tuple of per-request tensors; fields that are None stay None)."""
    return type(batch)(*(None if part is None else part[start:stop] for part in batch))


def count_invalid(ids: torch.Tensor, valid: set[tuple[int, ...]]) -> int:
    """Output IDs ``[M, T]`` (level-local tokens) that are no row of the ID table."""
    return sum(tuple(row) not in valid for row in ids.tolist())


def measure(decode: Callable, batch: NamedTuple, size: int, calls: int, valid: set, sync: Callable[[], None]) -> dict:
    """Warm up (batch-1 calls), then time ``calls`` calls of ``size`` requests each; requests/s, latency per call, invalid IDs."""
    for call in range(WARMUP_CALLS):
        decode(rows(batch, call, call + 1))
    times, invalid = [], 0
    for call in range(calls):
        start = (call * size) % (len(batch[0]) - size + 1)
        part = rows(batch, start, start + size)
        sync()
        started = time.perf_counter()
        ids = decode(part)
        sync()
        times.append(time.perf_counter() - started)
        invalid += count_invalid(ids, valid)
    return {
        "batch": size,
        "calls": calls,
        "requests_per_s": size * calls / sum(times),
        "median_ms": float(np.median(times)) * MS,
        "p90_ms": float(np.percentile(times, P90)) * MS,
        "invalid_ids": invalid,
    }


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
    sync = _sync(id_tokens.device)
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return size * steps / (time.perf_counter() - started)


def _sync(device: torch.device) -> Callable[[], None]:
    """A barrier for timing: waits for the GPU on cuda, does nothing on cpu."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or 'unknown')."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


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
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the numbers as JSON here.")] = None,
):
    """Decode requests/s and latency of unisr vs HF generate, and unisr training examples/s."""
    wall_started = time.perf_counter()
    if threads > 0:
        torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    target = torch.device(device)
    sync = _sync(target)
    config_name, config = config, api.decoder_config(config)
    ids = IdTable.load(codes / "id_table.csv").semantic_ids if codes is not None else id_table(items, seed)
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

    def unisr_decode(batch: EncoderInput) -> torch.Tensor:
        return generate(model, batch, trie, config.beam_size, config.top_k).ids.reshape(-1, layout.id_length)

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
    results = []
    with torch.inference_mode():
        for name, decode, inputs, plan in (
            ("unisr", unisr_decode, unisr_batch, ((1, repeats), (batch, batch_repeats))),
            ("hf-generate", hf_decode, hf_batch, ((1, repeats), (hf_large, 1))),
        ):
            for size, calls in plan:
                results.append({"decoder": name, **measure(decode, inputs, size, calls, valid, sync)})
                typer.echo(f"  measured {name} at batch {size} ({time.perf_counter() - wall_started:.0f} s)", err=True)
    speedups = {
        f"{unisr_row['batch']} vs {hf_row['batch']}": unisr_row["requests_per_s"] / hf_row["requests_per_s"]
        for unisr_row, hf_row in zip(results[:2], results[2:], strict=True)
    }
    training = {
        "one target per row": train_examples_per_s(layout, id_tokens, item_vectors, histories, train_batch, train_steps, seed, config_name)
    }
    report = {
        "decode": results,
        "speedup_unisr_over_hf": speedups,
        "train_examples_per_s": training,
        "train_batch": train_batch,
        "items": items,
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


def print_report(report: dict) -> None:
    """The markdown tables and the environment lines."""
    typer.echo(
        f"\n{report['items']} items, beam {report['beam_size']}, top {report['top_k']}, encoder length {report['encoder_length']}, "
        f"device {report['device']}\n"
    )
    typer.echo("| decoder | batch | requests/s | median latency ms | p90 ms | invalid IDs |")
    typer.echo("|---|---|---|---|---|---|")
    for row in report["decode"]:
        typer.echo(
            f"| {row['decoder']} | {row['batch']} | {row['requests_per_s']:.1f} | {row['median_ms']:.1f} | {row['p90_ms']:.1f} "
            f"| {row['invalid_ids']} |"
        )
    typer.echo(
        "\nspeed-up unisr / HF (requests/s, unisr batch vs HF batch): "
        + ", ".join(f"{pair}: {ratio:.1f}x" for pair, ratio in report["speedup_unisr_over_hf"].items())
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
