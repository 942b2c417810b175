"""Constrained generation with a trained model: encode once, beams share each request's encoder keys/values."""

from __future__ import annotations

import torch

from unisr.decoder.beam import BeamResult, constrained_beam_search
from unisr.decoder.model import EncoderInput, SemanticIdTransformer
from unisr.decoder.trie import PrefixTrie


def generate(
    model: SemanticIdTransformer, batch: EncoderInput, trie: PrefixTrie, beam_size: int, top_k: int, exclude: torch.Tensor | None = None
) -> BeamResult:
    """Constrained beam search for a batch of encoder inputs; returns the BeamResult (item rows of the trie)."""
    memory = model.encode(batch)
    context = model.request_context(memory)  # beams of a request share its encoder keys/values (request-major rows)
    offsets = torch.tensor(model.layout.level_offsets, device=memory.states.device)

    def score_step(prefix: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        return model.level_log_probs(prefix + offsets[: prefix.shape[1]], context)

    return constrained_beam_search(score_step, trie, len(batch.task), beam_size, top_k, exclude)
