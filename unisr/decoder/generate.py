"""Constrained generation with a trained model: encode once, beams share each request's encoder keys/values.

Decoding is incremental: each depth feeds only the beams' newest token, the decoder's self-attention keys and
values of the earlier positions are cached (and follow each beam to its parent), and only the level's slice
of the output projection is computed. ``incremental=False`` recomputes every prefix in full at every depth:
the reference path, kept to check the incremental one (the same items and scores up to float rounding).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from unisr.decoder.beam import DEAD, NO_ITEM, BeamResult, constrained_beam_search
from unisr.decoder.guidance import CodePrior, ItemGuide, ItemPrior
from unisr.decoder.model import CrossContext, EncoderInput, SemanticIdTransformer, TokenLayout
from unisr.decoder.trie import PrefixTrie


class Guide(NamedTuple):
    """Content guidance of one batch: the tokenizer's prior, each request's anchor latent, and its weight.

    With ``items``, the decoding-time term is the exact item prior (:class:`~unisr.decoder.guidance.ItemPrior`) instead of
    the tokenizer's code prior, which then serves only the model's own ``trained_weight`` (and may be None without one),
    or, with ``item_share`` below 1, a mix of the two log-priors.
    """

    prior: CodePrior | None
    anchors: torch.Tensor  # [B, latent_dim]
    present: torch.Tensor  # [B] bool: requests without an anchor get a flat prior
    weight: float  # added at decoding: log p + weight * log prior
    trained_weight: float = 0.0  # the model's own weight (``guidance_training``): its distribution is softmax(logits + w * log prior)
    items: ItemGuide | None = None  # content vectors of the items and anchors, for the item prior
    item_share: float = 1.0  # with ``items``: the weighted log-prior is share × item prior + (1 - share) × code prior

    def rows(self, rows: slice) -> Guide:
        """This guide for the requests ``rows`` of its batch."""
        items = None if self.items is None else self.items._replace(anchors=self.items.anchors[rows], present=self.items.present[rows])
        return self._replace(anchors=self.anchors[rows], present=self.present[rows], items=items)


class ColdReserve(NamedTuple):
    """A share of each ranked list kept for cold items (never seen in training), as TIGER reserves a share ε of its list.

    The cold items' own trie is decoded with the same model and encoder states; the best of them that the warm list
    does not already hold take the reserved ranks (:func:`cold_ranks`: with share 0.1, ranks 10, 20, ...).
    """

    trie: PrefixTrie  # the cold items' IDs
    rows: torch.Tensor  # [N_cold] item row (of the main trie) of each cold trie row
    share: float  # share of the ranks given to cold items


class IncrementalScorer:
    """Decoder log-probabilities of the next token, one position per depth, with the self-attention cache of the live beams."""

    def __init__(self, model: SemanticIdTransformer, context: CrossContext):
        self.model, self.bias, self.key_values = model, context.bias, model.step_key_values(context)
        self.offsets = torch.tensor(model.layout.level_offsets, device=context.bias.device)
        self.cache: list[torch.Tensor] | None = None
        self.parents: torch.Tensor | None = None

    def __call__(self, prefix: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        depth = prefix.shape[1]
        tokens = prefix[:, -1] + self.offsets[depth - 1] if depth else torch.full_like(batch_index, TokenLayout.START)
        states, self.cache = self.model.decode_step(tokens, self.cache, self.parents, self.key_values, self.bias)
        return self.model.next_log_probs(states, depth)

    def keep_rows(self, parents: torch.Tensor) -> None:
        self.parents = parents


CPU_CHUNK_ROWS = 640  # beams decoded together on CPU: activations stay in cache (24-48 requests x 20 beams beat 256 by ~20%)


def generate(
    model: SemanticIdTransformer,
    batch: EncoderInput,
    trie: PrefixTrie,
    beam_size: int,
    top_k: int,
    exclude: torch.Tensor | None = None,
    guide: Guide | None = None,
    incremental: bool = True,
    cold: ColdReserve | None = None,
) -> BeamResult:
    """Constrained beam search for a batch of encoder inputs; returns the BeamResult (item rows of the trie).

    With ``guide``, each step's decoder log-probabilities are summed with ``guide.weight`` × the content prior.
    With ``cold``, a share of the ranks of each list goes to the best cold items (:func:`reserve_slots`).
    Runs in inference mode. On CPU, requests are decoded in chunks of about ``CPU_CHUNK_ROWS`` beams (requests are
    independent). ``incremental=False``, or a model in training mode (dropout on), decodes with the reference path.
    """
    with torch.inference_mode():
        if not incremental or model.training:
            return _decode(model, batch, trie, beam_size, top_k, exclude, guide, False, cold)
        size = len(batch.task)
        chunk = max(1, CPU_CHUNK_ROWS // beam_size) if batch.task.device.type == "cpu" else size
        if size <= chunk:
            return _decode(model, batch, trie, beam_size, top_k, exclude, guide, True, cold)
        exclude = None if exclude is None else torch.as_tensor(exclude)
        parts = []
        for start in range(0, size, chunk):
            rows = slice(start, start + chunk)
            part_guide = None if guide is None else guide.rows(rows)
            part_batch = type(batch)(*(None if field is None else field[rows] for field in batch))
            part_exclude = None if exclude is None else exclude[rows]
            parts.append(_decode(model, part_batch, trie, beam_size, top_k, part_exclude, part_guide, True, cold))
        return BeamResult(*(torch.cat(fields) for fields in zip(*parts, strict=True)))


def _decode(
    model: SemanticIdTransformer,
    batch: EncoderInput,
    trie: PrefixTrie,
    beam_size: int,
    top_k: int,
    exclude: torch.Tensor | None,
    guide: Guide | None,
    incremental: bool,
    cold: ColdReserve | None = None,
) -> BeamResult:
    """:func:`generate` of one chunk of requests (in inference mode)."""
    memory = model.encode(batch)
    context = model.request_context(memory)  # beams of a request share its encoder keys/values (request-major rows)
    size = len(batch.task)
    warm = _search(model, context, trie, size, beam_size, top_k, exclude, guide, incremental)
    if cold is None or not cold_ranks(top_k, cold.share).any() or len(cold.rows) == 0:
        return warm
    cold_exclude = None if exclude is None else _to_cold_rows(torch.as_tensor(exclude, device=cold.rows.device), cold.rows)
    if guide is not None and guide.items is not None:  # the item prior over the cold trie reads the cold items' vectors
        guide = guide._replace(items=guide.items._replace(items=guide.items.items[cold.rows.to(guide.items.items.device)]))
    found = _search(model, context, cold.trie, size, max(beam_size, top_k), top_k, cold_exclude, guide, incremental)
    found = found._replace(items=torch.where(found.items >= 0, cold.rows[found.items.clamp_min(0)], found.items))
    return reserve_slots(warm, found, cold.share)


def _search(
    model: SemanticIdTransformer,
    context: CrossContext,
    trie: PrefixTrie,
    size: int,
    beam_size: int,
    top_k: int,
    exclude: torch.Tensor | None,
    guide: Guide | None,
    incremental: bool,
) -> BeamResult:
    """One constrained beam search over ``trie`` on encoded requests ``context``."""
    offsets = torch.tensor(model.layout.level_offsets, device=context.bias.device)
    scorer = IncrementalScorer(model, context) if incremental else None
    item_prior = ItemPrior(trie, guide.items) if guide is not None and guide.items is not None and guide.weight else None

    def score_step(prefix: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        if scorer is not None:
            log_probs = scorer(prefix, batch_index)
        else:
            log_probs = model.level_log_probs(prefix + offsets[: prefix.shape[1]], context)
        if guide is not None and (guide.weight or guide.trained_weight):
            prior = None
            if guide.trained_weight or item_prior is None or guide.item_share < 1:
                prior = guide.prior.log_probs(prefix, guide.anchors[batch_index], guide.present[batch_index]).to(log_probs)
            if guide.trained_weight:
                log_probs = (log_probs + guide.trained_weight * prior).log_softmax(dim=-1)
            if guide.weight:
                extra = prior
                if item_prior is not None:
                    extra = item_prior.log_probs(prefix.to(trie.device), batch_index.to(trie.device)).to(log_probs)
                    if guide.item_share < 1:
                        extra = guide.item_share * extra + (1 - guide.item_share) * prior
                log_probs = log_probs + guide.weight * extra
        return log_probs

    followers = [part.keep_rows for part in (scorer, item_prior) if part is not None]

    def keep_rows(parents: torch.Tensor) -> None:
        for follow in followers:
            follow(parents)

    return constrained_beam_search(score_step, trie, size, beam_size, top_k, exclude, keep_rows if followers else None)


def _to_cold_rows(exclude: torch.Tensor, cold_rows: torch.Tensor) -> torch.Tensor:
    """Item rows ``exclude [B, H]`` (of the main trie) as rows of the cold trie; items that are not cold become -1."""
    order = cold_rows.argsort()
    position = torch.searchsorted(cold_rows[order], exclude.clamp_min(0)).clamp_max(len(cold_rows) - 1)
    found = (cold_rows[order][position] == exclude) & (exclude >= 0)
    return torch.where(found, order[position], NO_ITEM)


def cold_ranks(top_k: int, share: float) -> torch.Tensor:
    """Bool [top_k]: the ranks kept for cold items, spread so that the first r ranks hold floor(share × r) of them."""
    held = torch.floor(share * torch.arange(top_k + 1, dtype=torch.float64) + 1e-9).long()
    return held[1:] > held[:-1]


def reserve_slots(warm: BeamResult, cold: BeamResult, share: float) -> BeamResult:
    """Merge two [B, K] results over the same item rows, vectorized over requests.

    The reserved ranks (:func:`cold_ranks`) get, in order, ``cold``'s entries that the warm list's first K - n
    entries (n reserved ranks) do not hold; the other ranks get those warm entries in order. Where one list runs
    short, the other's remaining entries (cold first, then the warm tail) close the gap, so the list stays full.
    """
    top_k = warm.items.shape[1]
    reserved = cold_ranks(top_k, share).to(warm.items.device)
    keep = top_k - int(reserved.sum())
    inf = torch.tensor(float("inf"), device=warm.items.device)
    position = torch.arange(top_k, device=warm.items.device)
    head = warm.items[:, :keep]
    in_head = (cold.items[:, :, None] == head[:, None, :]).any(dim=2)
    earlier = (cold.items[:, :, None] == cold.items[:, None, :]).tril(diagonal=-1).any(dim=2)
    cold_ok = (cold.items >= 0) & ~in_head & ~earlier
    cold_rank = cold_ok.long().cumsum(dim=1) - 1  # order among the usable cold entries
    reserved_at = torch.cat([position[reserved], top_k + position]).to(torch.float)  # key of the j-th usable cold entry
    cold_key = torch.where(cold_ok, reserved_at[cold_rank.clamp(0, top_k - 1)], inf)
    warm_tail_taken = (warm.items[:, :, None] == torch.where(cold_ok, cold.items, -2)[:, None, :]).any(dim=2)
    warm_at = torch.cat([position[~reserved].to(torch.float), 2 * top_k + position[keep:].to(torch.float)])
    warm_key = torch.where((warm.items >= 0) & ~(warm_tail_taken & (position >= keep)), warm_at, inf)
    keys = torch.cat([warm_key, cold_key], dim=1)
    order = keys.argsort(dim=1, stable=True)[:, :top_k]
    dead = keys.gather(1, order).isinf()
    pool = BeamResult(*(torch.cat([w, c], dim=1) for w, c in zip(warm, cold, strict=True)))
    return BeamResult(
        items=pool.items.gather(1, order).masked_fill(dead, NO_ITEM),
        scores=pool.scores.gather(1, order).masked_fill(dead, DEAD),
        ids=pool.ids.gather(1, order[..., None].expand(-1, -1, pool.ids.shape[2])).masked_fill(dead[..., None], NO_ITEM),
    )
