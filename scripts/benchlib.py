"""Pieces shared by the decoding benchmarks (bench_decode, bench_catalog): the ID sizes, rec requests, timing, the machine.

Imported by the scripts next to it (each puts this folder on ``sys.path``); imports nothing heavier than unisr's model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch

from unisr.decoder.model import EncoderInput, TokenLayout

CODEBOOK_SIZE = 256  # codes per residual level
RESIDUAL_LEVELS = 3  # residual codes per ID (a collision token follows)
QUERY_DIM = 384  # width of the frozen sentence embeddings (all-MiniLM-L6-v2); unused by rec requests


def unisr_inputs(histories: torch.Tensor, id_tokens: torch.Tensor, item_vectors: torch.Tensor) -> EncoderInput:
    """Rec-task encoder inputs for item-index histories ``[B, N]`` (with the items' content vectors)."""
    size = len(histories)
    task = torch.full((size,), TokenLayout.TASK["rec"], dtype=torch.long, device=histories.device)
    query = torch.zeros(size, QUERY_DIM, device=histories.device)
    no_query = torch.zeros(size, dtype=torch.bool, device=histories.device)
    return EncoderInput(task, id_tokens[histories], query, no_query, None, item_vectors[histories])


def rows(batch: NamedTuple, start: int, stop: int) -> NamedTuple:
    """Requests ``start:stop`` of a batch (a named tuple of per-request tensors; fields that are None stay None)."""
    return type(batch)(*(None if part is None else part[start:stop] for part in batch))


def timing_barrier(device: torch.device) -> Callable[[], None]:
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
