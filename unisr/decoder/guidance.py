"""Content guidance for beam search: a prior over each level's codes from the frozen tokenizer.

The tokenizer maps a content embedding to a latent and quantizes it level by level: at level ``l`` the
code is the codeword nearest to what the earlier levels left over. Given an *anchor* embedding (the
query's sentence vector for search, the last history item's embedding for recommendation) and a beam's
prefix, the same residual gives a distribution over level ``l``'s codes::

    log q(c | anchor, prefix) = log_softmax_c( -||r_l - C_l[c]||^2 / s_l ),   r_l = z - sum_{i<l} C_i[prefix_i]

with ``s_l`` the items' mean squared distance to their own codeword at level ``l`` (a scale read from the
data, not a setting). Beam search then scores ``log p_decoder + weight * log q``. The collision token
carries no content, so its prior is flat. Weight 0 (or random, non-semantic codes) leaves decoding as is.

:class:`ItemPrior` (``guidance_prior_rec/search: items``) is the other prior: a softmax over *all items* of the anchor's cosine
similarity to each item's content embedding (the sentence vectors themselves, not the tokenizer's latents), standardized
per request, ``z_i = (cos_i - mean) / std``. Its next-token probabilities are the exact marginals of that softmax over
the trie, ``log q(c | prefix) = logsumexp_{i under prefix + c} z_i - logsumexp_{i under prefix} z_i``, so the prior terms
of a whole ID sum to ``z_i - logsumexp_j z_j``: with the weight alone it ranks the beam's items as dense retrieval does
(content kNN of the last item for recommendation), the collision token included.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from unisr.decoder.trie import PAD, PrefixTrie
from unisr.tokenizer.quantizer import nearest_code, squared_distances


class Guidance(NamedTuple):
    """Weights of the content prior in beam search, per task (0 = pure decoder)."""

    rec: float = 0.0
    search: float = 0.0

    def weight(self, task: str) -> float:
        return float(getattr(self, task))


class CodePrior:
    """Residual-quantization log-prior of a tokenizer's codebooks for anchor latents."""

    def __init__(self, codebooks: torch.Tensor, scales: torch.Tensor, vocab_sizes: tuple[int, ...]):
        self.codebooks = codebooks  # [levels, K, D]
        self.scales = scales  # [levels]
        self.vocab_sizes = vocab_sizes  # tokens per ID position (levels + the collision token)

    @classmethod
    def fit(cls, codebooks: torch.Tensor, item_latents: torch.Tensor, vocab_sizes: tuple[int, ...]) -> CodePrior:
        """Scales from the items' own residual quantization errors, level by level."""
        residual, scales = item_latents, []
        for codebook in codebooks:
            quantized = codebook[nearest_code(residual, codebook)]
            scales.append((residual - quantized).pow(2).sum(1).mean().clamp_min(1e-8))
            residual = residual - quantized
        return cls(codebooks, torch.stack(scales), vocab_sizes)

    def _level(self, residual: torch.Tensor, level: int) -> torch.Tensor:
        """Log-prior ``[R, K]`` of level ``level``'s codes for what the earlier levels left of the anchors."""
        return F.log_softmax(-squared_distances(residual, self.codebooks[level]) / self.scales[level], dim=1)

    def log_probs(self, prefixes: torch.Tensor, anchors: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Log-prior ``[R, V_t]`` of the next token after ``prefixes [R, t]`` (level tokens, no offsets).

        ``anchors [R, D]`` are the rows' anchor latents; rows where ``present`` is False get a flat (zero) prior.
        """
        depth = prefixes.shape[1]
        vocab = self.vocab_sizes[depth]
        if depth >= len(self.codebooks):
            return anchors.new_zeros(len(prefixes), vocab)
        if self.codebooks.shape[1] != vocab:
            raise ValueError(f"level {depth}: the tokenizer has {self.codebooks.shape[1]} codes, the decoder's vocabulary {vocab}")
        residual = anchors
        for level in range(depth):
            residual = residual - self.codebooks[level][prefixes[:, level]]
        return self._level(residual, depth) * present[:, None]

    def teacher_forced(self, codes: torch.Tensor, anchors: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Log-prior ``[M, levels, K]`` of every residual level given the true earlier codes ``codes [M, levels]`` (training)."""
        residual, levels = anchors, []
        for level, codebook in enumerate(self.codebooks):
            levels.append(self._level(residual, level))
            residual = residual - codebook[codes[:, level]]
        return torch.stack(levels, dim=1) * present[:, None, None]

    def to(self, device: torch.device | str) -> CodePrior:
        return CodePrior(self.codebooks.to(device), self.scales.to(device), self.vocab_sizes)


class ItemGuide(NamedTuple):
    """What :class:`ItemPrior` needs for a batch: the items' content vectors and each request's anchor vector."""

    items: torch.Tensor  # [N, E] unit-normalized content embeddings of the trie's items (rows of its ID table)
    anchors: torch.Tensor  # [B, E] the query's sentence vector (search) or the last history item's embedding (rec)
    present: torch.Tensor  # [B] bool: requests without an anchor get a flat prior


class ItemPrior:
    """Exact per-token marginals, over a trie, of a softmax over all its items by standardized cosine to the anchors."""

    def __init__(self, trie: PrefixTrie, guide: ItemGuide):
        if len(guide.items) != len(trie):
            raise ValueError(f"the item prior has {len(guide.items)} item vectors for a trie of {len(trie)} items")
        self.trie, self.present = trie, guide.present
        scores = F.normalize(guide.anchors.float(), dim=1) @ guide.items.float().T  # [B, N] cosines, standardized in place
        std, mean = torch.std_mean(scores, dim=1, keepdim=True)
        scores.sub_(mean).div_(std.clamp_min(1e-6))
        self.masses = _node_masses(trie, scores)
        self.root = self.masses[0].logsumexp(dim=1)  # [B]
        self._children: tuple[torch.Tensor, torch.Tensor] | None = None  # the last call's rows' child tokens and nodes
        self._parents: torch.Tensor | None = None  # rows of the last call that this call's rows extend (keep_rows)

    def keep_rows(self, parents: torch.Tensor) -> None:
        """The next call's rows extend rows ``parents`` of this one (beam search's ``keep_rows``): their nodes follow."""
        self._parents = parents

    def _nodes_of(self, prefixes: torch.Tensor) -> torch.Tensor:
        """The trie node of each row's prefix: from the previous call's children where the rows were followed, else searched."""
        if self._children is None or self._parents is None or prefixes.shape[1] == 0:
            return self.trie.node_of(prefixes)
        tokens, nodes = (part[self._parents] for part in self._children)
        match = tokens == prefixes[:, -1:]
        return torch.where(match.any(dim=1), nodes.gather(1, match.float().argmax(dim=1, keepdim=True)).squeeze(1), -1)

    def log_probs(self, prefixes: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        """Log-prior ``[R, V_t]`` of the next token after valid ``prefixes [R, t]`` of requests ``batch_index [R]``
        (tokens that are not children of the prefix get 0: beam search never reads them)."""
        depth = prefixes.shape[1]
        parent = self._nodes_of(prefixes)
        parent_mass = self.root[batch_index] if depth == 0 else self.masses[depth - 1][batch_index, parent.clamp_min(0)]
        tokens, children = self.trie.children(depth, parent)
        self._children, self._parents = (tokens, children), None
        columns = children.clamp_min(0)
        if depth == self.trie.depth - 1:  # the leaves' masses are the items' own scores, by item row
            columns = self.trie.leaf_item[columns]
        child_mass = self.masses[depth][batch_index[:, None], columns]
        valid = (children != PAD) & self.present[batch_index, None]
        vocab = self.trie.vocab_sizes[depth]
        out = child_mass.new_zeros(len(prefixes), vocab + 1)  # the extra column takes the padding
        out.scatter_(1, torch.where(valid, tokens, vocab), torch.where(valid, child_mass - parent_mass[:, None], 0.0))
        return out[:, :vocab]


def _node_masses(trie: PrefixTrie, scores: torch.Tensor) -> list[torch.Tensor]:
    """Per depth, ``[B, nodes]``: logsumexp of ``scores [B, N]`` over the items under each node, from the leaves up (each
    depth reduces the one below it, so the work is items + nodes, not items × depth); the leaves' entry is ``scores`` itself,
    by item row."""
    last = trie.depth - 1
    masses = [scores]
    if last > 0:
        masses.insert(0, _segment_logsumexp(scores, trie.item_nodes()[last - 1], trie.num_nodes(last - 1)))
    for depth in reversed(range(last - 1)):
        starts = trie.child_starts[depth + 1]
        parents = torch.repeat_interleave(torch.arange(len(starts) - 1, device=starts.device), starts.diff())
        masses.insert(0, _segment_logsumexp(masses[0], parents, trie.num_nodes(depth)))
    return masses


def _segment_logsumexp(scores: torch.Tensor, segment: torch.Tensor, segments: int) -> torch.Tensor:
    """``[B, segments]``: logsumexp of ``scores [B, N]`` over the columns of each segment (``segment [N]``, every one non-empty)."""
    index = segment[None].expand_as(scores)
    peak = scores.new_full((len(scores), segments), float("-inf")).scatter_reduce(1, index, scores, "amax")
    total = scores.new_zeros(len(scores), segments).scatter_add_(1, index, (scores - peak.gather(1, index)).exp())
    return peak + total.log()
