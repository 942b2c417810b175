"""Beam search constrained to the valid semantic IDs of a :class:`PrefixTrie`, vectorized over requests and beams.

At each depth every live beam sits on a trie node; only that node's children are scored (the model's
log-probabilities gathered at the child tokens), and the best ``beam_size`` (beam, child) pairs of each
request survive. A beam whose score is ``-inf`` is dead: it stays dead and never yields an item. Nothing
ever falls back to unconstrained tokens, so every returned ID is a row of the trie.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from unisr.decoder.trie import PAD, ROOT, PrefixTrie

NO_ITEM = -1  # item index (and ID tokens) of an output slot with no candidate
DEAD = float("-inf")  # score of a dead beam / an output slot with no candidate

ScoreStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``score_step(prefixes [R, t], batch_index [R]) -> log_probs [R, V_t]`` for the R live rows at depth t."""

KeepRows = Callable[[torch.Tensor], None]
"""``keep_rows(parents [R'])``: the rows of the next depth extend rows ``parents`` of this one (for per-row state, a decoder cache)."""


class BeamResult(NamedTuple):
    """The ``top_k`` best items of each request, best first; empty slots hold item -1, score -inf, ID row -1."""

    items: torch.Tensor  # LongTensor [B, top_k]: item indices (rows of the trie's ``ids``)
    scores: torch.Tensor  # FloatTensor [B, top_k]: sum of the log-probabilities of the ID's tokens
    ids: torch.Tensor  # LongTensor [B, top_k, T]: the semantic IDs


def constrained_beam_search(
    score_step: ScoreStep,
    trie: PrefixTrie,
    batch_size: int,
    beam_size: int,
    top_k: int,
    exclude_items: torch.Tensor | None = None,
    keep_rows: KeepRows | None = None,
) -> BeamResult:
    """Decode the ``top_k`` best valid IDs of each of ``batch_size`` requests with ``beam_size`` beams each.

    ``score_step`` is called once per depth with all beams of all requests stacked: ``B`` rows at depth 0
    (one beam per request, at the root), ``B * beam_size`` rows after. ``exclude_items [B, H]`` (padding -1)
    lists items request b must not return; they are removed at the last depth, so a beam whose subtree
    holds only excluded items dies (use a ``beam_size`` above ``top_k`` to leave room for that). ``keep_rows``, if
    given, is called after each depth but the last with the row (of that depth's ``score_step`` call) each new beam extends.
    """
    _check_sizes(batch_size, beam_size, top_k)
    device = trie.device
    exclusions = _sorted_exclusions(exclude_items, batch_size, device)
    node = torch.full((batch_size, 1), ROOT, dtype=torch.long, device=device)
    scores = torch.zeros((batch_size, 1), device=device)
    prefixes = torch.zeros((batch_size, 1, 0), dtype=torch.long, device=device)
    for depth in range(trie.depth):
        last = depth == trie.depth - 1
        log_probs = _log_probs(score_step, prefixes, trie.vocab_sizes[depth], device)
        child_tokens, child_nodes = trie.children(depth, torch.where(scores > DEAD, node, PAD))  # dead beams have no children
        candidates = scores[..., None] + _gather_children(log_probs, child_tokens)
        if last and exclusions is not None:
            candidates = candidates.masked_fill(_excluded(trie.leaf_item[child_nodes.clamp_min(0)], exclusions), DEAD)
        scores, source, token, node = _select(candidates, child_tokens, child_nodes, top_k if last else beam_size)
        if keep_rows is not None and not last:
            keep_rows((source + torch.arange(batch_size, device=device)[:, None] * log_probs.shape[1]).flatten())
        kept = prefixes.gather(1, source[..., None].expand(-1, -1, depth))
        prefixes = torch.cat([kept, token[..., None]], dim=2)
    live = scores > DEAD
    return BeamResult(
        items=torch.where(live, trie.leaf_item[node], NO_ITEM),
        scores=scores.masked_fill(~live, DEAD),
        ids=prefixes.masked_fill(~live[..., None], NO_ITEM),
    )


def _check_sizes(batch_size: int, beam_size: int, top_k: int) -> None:
    """Raise ValueError unless ``batch_size >= 1`` and ``beam_size >= top_k >= 1``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    if beam_size < top_k:
        raise ValueError(f"beam_size ({beam_size}) must be at least top_k ({top_k})")


def _sorted_exclusions(exclude_items: torch.Tensor | None, batch_size: int, device: torch.device) -> torch.Tensor | None:
    """``exclude_items [B, H]`` sorted along H (for ``searchsorted``), or None when nothing is excluded."""
    if exclude_items is None:
        return None
    exclude = torch.as_tensor(exclude_items, device=device)
    if exclude.is_floating_point() or exclude.dim() != 2 or exclude.shape[0] != batch_size:
        raise ValueError(f"exclude_items must be an integer [{batch_size}, H] tensor, got {exclude.dtype} {tuple(exclude.shape)}")
    if exclude.shape[1] == 0:
        return None
    return exclude.long().sort(dim=1).values.contiguous()


def _log_probs(score_step: ScoreStep, prefixes: torch.Tensor, vocab_size: int, device: torch.device) -> torch.Tensor:
    """Call ``score_step`` on the stacked beams ``prefixes [B, W, t]``; its output as ``[B, W, V_t]`` on ``device``."""
    batch, width, depth = prefixes.shape
    batch_index = torch.arange(batch, device=device).repeat_interleave(width)
    log_probs = score_step(prefixes.reshape(batch * width, depth), batch_index)
    if not isinstance(log_probs, torch.Tensor) or log_probs.dim() != 2 or log_probs.shape[0] != batch * width:
        shape = tuple(log_probs.shape) if isinstance(log_probs, torch.Tensor) else type(log_probs).__name__
        raise ValueError(f"score_step must return log-probabilities [{batch * width}, {vocab_size}] at depth {depth}, got {shape}")
    if log_probs.shape[1] < vocab_size:
        raise ValueError(f"score_step returned {log_probs.shape[1]} log-probabilities at depth {depth}; the vocabulary has {vocab_size}")
    return log_probs.to(device).reshape(batch, width, -1)


def _gather_children(log_probs: torch.Tensor, child_tokens: torch.Tensor) -> torch.Tensor:
    """``log_probs [B, W, V]`` at ``child_tokens [B, W, C]``; padding (and NaN) → -inf."""
    gathered = log_probs.gather(2, child_tokens.clamp_min(0))
    return gathered.masked_fill((child_tokens == PAD) | gathered.isnan(), DEAD)


def _excluded(items: torch.Tensor, exclusions: torch.Tensor) -> torch.Tensor:
    """Bool like ``items [B, W, C]``: whether each item is in its request's row of ``exclusions [B, H]`` (sorted)."""
    flat = items.reshape(len(items), -1)
    position = torch.searchsorted(exclusions, flat).clamp_max(exclusions.shape[1] - 1)
    return (exclusions.gather(1, position) == flat).reshape(items.shape)


def _select(
    candidates: torch.Tensor, child_tokens: torch.Tensor, child_nodes: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top ``k`` (beam, child) candidates per request, padded with dead ones: (scores, source beam, token, node), each [B, k].

    Dead slots point at token 0 / node 0, so that every row handed to ``score_step`` or indexed later is in range.
    """
    batch, width, n_children = candidates.shape
    scores, tokens, nodes = candidates.reshape(batch, -1), child_tokens.reshape(batch, -1), child_nodes.reshape(batch, -1)
    missing = k - scores.shape[1]
    if missing > 0:
        scores = torch.nn.functional.pad(scores, (0, missing), value=DEAD)
        tokens = torch.nn.functional.pad(tokens, (0, missing), value=PAD)
        nodes = torch.nn.functional.pad(nodes, (0, missing), value=PAD)
    top_scores, index = scores.topk(k, dim=1)
    source = (index // n_children).clamp_max(width - 1)
    return top_scores, source, tokens.gather(1, index).clamp_min(0), nodes.gather(1, index).clamp_min(0)
