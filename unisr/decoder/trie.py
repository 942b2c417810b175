"""A prefix trie over the valid semantic IDs, stored as padded per-depth child tables for vectorized decoding.

Rows are sorted lexicographically; the distinct prefixes of length ``d + 1`` are the nodes of depth ``d``
(numbered in sorted order, so the children of one node are contiguous and sorted by token). For each
depth ``d`` the table ``children_tokens[d]`` has one row per node of depth ``d - 1`` (one root row at
``d = 0``) listing the tokens of its children, padded with ``PAD``; ``children_nodes[d]`` gives the
node index (at depth ``d``) of each child. Full-length nodes are leaves, one per item: ``leaf_item``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

PAD = -1  # padding of the child tables, and "no item" in lookups
ROOT = 0  # index of the single node above depth 0


class PrefixTrie:
    """The set of valid semantic IDs (one per item) as per-depth child tables; build with :meth:`from_ids`."""

    def __init__(
        self,
        ids: torch.Tensor,
        vocab_sizes: tuple[int, ...],
        children_tokens: list[torch.Tensor],
        children_nodes: list[torch.Tensor],
        leaf_item: torch.Tensor,
    ):
        self.ids = ids
        self.vocab_sizes = vocab_sizes
        self.children_tokens = children_tokens
        self.children_nodes = children_nodes
        self.leaf_item = leaf_item

    @classmethod
    def from_ids(cls, ids: torch.Tensor, vocab_sizes: Sequence[int]) -> PrefixTrie:
        """Build the trie of ``ids [N, T]`` (row i = the ID of item i; rows distinct, token t in ``[0, vocab_sizes[t])``)."""
        ids = _validated_ids(ids, vocab_sizes)
        order = _lexicographic_order(ids)
        rows = ids[order]
        _check_distinct(rows, order)
        children_tokens, children_nodes = [], []
        parent_of_row = torch.full((len(rows),), ROOT, dtype=torch.long, device=rows.device)
        changed = torch.zeros(len(rows) - 1, dtype=torch.bool, device=rows.device)
        for depth in range(ids.shape[1]):
            changed = changed | (rows[1:, depth] != rows[:-1, depth])
            is_first = torch.cat([changed.new_ones(1), changed])
            first_rows = is_first.nonzero().squeeze(1)
            n_parents = 1 if depth == 0 else int(parent_of_row[-1]) + 1
            tokens, nodes = _child_tables(parent_of_row[first_rows], rows[first_rows, depth], n_parents)
            children_tokens.append(tokens)
            children_nodes.append(nodes)
            parent_of_row = torch.cumsum(is_first.long(), 0) - 1
        return cls(ids, tuple(int(v) for v in vocab_sizes), children_tokens, children_nodes, order)

    def with_items(self, new_ids: torch.Tensor) -> PrefixTrie:
        """A new trie with ``new_ids`` appended: old items keep their indices, new ones continue after them."""
        new_ids = torch.as_tensor(new_ids, device=self.device)
        if new_ids.dim() != 2 or new_ids.shape[1] != self.depth:
            raise ValueError(f"new IDs must be a [M, {self.depth}] table, got shape {tuple(new_ids.shape)}")
        return PrefixTrie.from_ids(torch.cat([self.ids, new_ids]), self.vocab_sizes)

    def to(self, device: torch.device | str) -> PrefixTrie:
        """This trie with every table on ``device``."""
        return PrefixTrie(
            self.ids.to(device),
            self.vocab_sizes,
            [t.to(device) for t in self.children_tokens],
            [n.to(device) for n in self.children_nodes],
            self.leaf_item.to(device),
        )

    @property
    def device(self) -> torch.device:
        return self.leaf_item.device

    @property
    def depth(self) -> int:
        """T, the number of tokens of an ID."""
        return len(self.vocab_sizes)

    def __len__(self) -> int:
        return len(self.ids)

    def num_nodes(self, depth: int) -> int:
        """Distinct prefixes of length ``depth + 1`` (``depth = -1``: the root)."""
        return len(self.children_tokens[depth + 1]) if depth + 1 < self.depth else len(self.leaf_item)

    def item_of(self, id_rows: torch.Tensor) -> torch.Tensor:
        """Item index of each row of ``id_rows [M, T]``, ``PAD`` where the row is not a valid ID."""
        id_rows = torch.as_tensor(id_rows, device=self.device).long().reshape(-1, self.depth)
        node = torch.full((len(id_rows),), ROOT, dtype=torch.long, device=self.device)
        found = torch.ones(len(id_rows), dtype=torch.bool, device=self.device)
        for depth in range(self.depth):
            token = id_rows[:, depth]
            match = (self.children_tokens[depth][node] == token[:, None]) & (token[:, None] >= 0)
            found &= match.any(dim=1)
            child = self.children_nodes[depth][node].gather(1, match.long().argmax(dim=1, keepdim=True)).squeeze(1)
            node = torch.where(found, child, ROOT)
        return torch.where(found, self.leaf_item[node], PAD)

    def contains(self, id_rows: torch.Tensor) -> torch.Tensor:
        """Bool ``[M]``: whether each row of ``id_rows [M, T]`` is the ID of an item."""
        return self.item_of(id_rows) != PAD


def _validated_ids(ids: torch.Tensor, vocab_sizes: Sequence[int]) -> torch.Tensor:
    """``ids`` as a LongTensor ``[N, T]``, after checking its shape and that every token is within its vocabulary."""
    ids = torch.as_tensor(ids)
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"semantic IDs must be an integer tensor, got dtype {ids.dtype}")
    if ids.dim() != 2 or ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"semantic IDs must be a non-empty [N, T] table, got shape {tuple(ids.shape)}")
    if len(vocab_sizes) != ids.shape[1]:
        raise ValueError(f"IDs have {ids.shape[1]} tokens but {len(vocab_sizes)} vocabulary sizes were given")
    ids = ids.long()
    vocab = torch.as_tensor(list(vocab_sizes), dtype=torch.long, device=ids.device)
    bad = (ids < 0) | (ids >= vocab)
    if bad.any():
        item, depth = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"item {item}: token {depth} is {int(ids[item, depth])}, outside [0, {int(vocab[depth])}) (vocab_sizes={list(vocab_sizes)})"
        )
    return ids


def _lexicographic_order(ids: torch.Tensor) -> torch.Tensor:
    """Permutation sorting the rows of ``ids`` lexicographically (stable sorts from the last column to the first)."""
    order = torch.arange(len(ids), device=ids.device)
    for depth in reversed(range(ids.shape[1])):
        order = order[torch.sort(ids[order, depth], stable=True).indices]
    return order


def _check_distinct(rows: torch.Tensor, order: torch.Tensor) -> None:
    """Raise ValueError naming two items with the same ID (``rows`` sorted, ``order`` their item indices)."""
    same = (rows[1:] == rows[:-1]).all(dim=1)
    if same.any():
        at = int(same.nonzero()[0])
        first, second = sorted((int(order[at]), int(order[at + 1])))
        raise ValueError(f"items {first} and {second} share the semantic ID {rows[at].tolist()}; IDs must be distinct")


def _child_tables(parents: torch.Tensor, tokens: torch.Tensor, n_parents: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded ``[n_parents, max children]`` tables of child tokens and child node indices.

    ``parents[j]`` / ``tokens[j]`` are the parent and token of node j of this depth; nodes are sorted by parent.
    """
    counts = torch.bincount(parents, minlength=n_parents)
    starts = torch.cumsum(counts, 0) - counts
    nodes = torch.arange(len(parents), device=parents.device)
    rank = nodes - starts[parents]
    width = int(counts.max())
    child_tokens = torch.full((n_parents, width), PAD, dtype=torch.long, device=parents.device)
    child_nodes = torch.full_like(child_tokens, PAD)
    child_tokens[parents, rank] = tokens
    child_nodes[parents, rank] = nodes
    return child_tokens, child_nodes
