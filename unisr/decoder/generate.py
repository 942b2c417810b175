"""Constrained generation with a trained model: encode once, beams share each request's encoder keys/values."""

from __future__ import annotations

from typing import NamedTuple

import torch

from unisr.decoder.beam import BeamResult, constrained_beam_search
from unisr.decoder.guidance import CodePrior
from unisr.decoder.model import EncoderInput, SemanticIdTransformer
from unisr.decoder.trie import PrefixTrie


class Guide(NamedTuple):
    """Content guidance of one batch: the tokenizer's prior, each request's anchor latent, and its weight."""

    prior: CodePrior
    anchors: torch.Tensor  # [B, latent_dim]
    present: torch.Tensor  # [B] bool: requests without an anchor get a flat prior
    weight: float  # added at decoding: log p + weight * log prior
    trained_weight: float = 0.0  # the model's own weight (``guidance_training``): its distribution is softmax(logits + w * log prior)


def generate(
    model: SemanticIdTransformer,
    batch: EncoderInput,
    trie: PrefixTrie,
    beam_size: int,
    top_k: int,
    exclude: torch.Tensor | None = None,
    guide: Guide | None = None,
) -> BeamResult:
    """Constrained beam search for a batch of encoder inputs; returns the BeamResult (item rows of the trie).

    With ``guide``, each step's decoder log-probabilities are summed with ``guide.weight`` × the content prior.
    """
    memory = model.encode(batch)
    context = model.request_context(memory)  # beams of a request share its encoder keys/values (request-major rows)
    offsets = torch.tensor(model.layout.level_offsets, device=memory.states.device)

    def score_step(prefix: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        log_probs = model.level_log_probs(prefix + offsets[: prefix.shape[1]], context)
        if guide is not None and (guide.weight or guide.trained_weight):
            prior = guide.prior.log_probs(prefix, guide.anchors[batch_index], guide.present[batch_index]).to(log_probs)
            if guide.trained_weight:
                log_probs = (log_probs + guide.trained_weight * prior).log_softmax(dim=-1)
            if guide.weight:
                log_probs = log_probs + guide.weight * prior
        return log_probs

    return constrained_beam_search(score_step, trie, len(batch.task), beam_size, top_k, exclude)
