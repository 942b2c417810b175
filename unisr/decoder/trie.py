"""A prefix trie over the valid semantic IDs, stored as compressed (CSR) per-depth child lists for vectorized decoding.

Rows are sorted lexicographically; the distinct prefixes of length ``d + 1`` are the nodes of depth ``d``
(numbered in sorted order, so the children of one node are contiguous and sorted by token). For each
depth ``d``, ``node_tokens[d]`` holds the last token of every node of depth ``d`` and ``child_starts[d]``
(one entry per node of depth ``d - 1``, one root at ``d = 0``, plus one) the offsets of each parent's
children in it: the children of parent ``p`` are the nodes ``child_starts[d][p]:child_starts[d][p + 1]``.
Every table grows with the number of nodes, never with nodes × fan-out. Full-length nodes are leaves,
one per item: ``leaf_item``. :meth:`PrefixTrie.children` expands the children of a set of parents into
padded ``[..., C]`` tables, ``C`` the largest family among them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

PAD = -1  # padding of the child tables, and "no item" in lookups
ROOT = 0  # index of the single node above depth 0


class PrefixTrie:
    """The set of valid semantic IDs (one per item) as per-depth CSR child lists; build with :meth:`from_ids`."""

    def __init__(
        self,
        ids: torch.Tensor,
        vocab_sizes: tuple[int, ...],
        child_starts: list[torch.Tensor],
        node_tokens: list[torch.Tensor],
        leaf_item: torch.Tensor,
    ):
        self.ids = ids
        self.vocab_sizes = vocab_sizes
        self.child_starts = child_starts
        self.node_tokens = node_tokens
        self.leaf_item = leaf_item
        self.max_children = tuple(int((starts[1:] - starts[:-1]).max()) for starts in child_starts)  # largest family per depth
        self._item_nodes: torch.Tensor | None = None

    @classmethod
    def from_ids(cls, ids: torch.Tensor, vocab_sizes: Sequence[int]) -> PrefixTrie:
        """Build the trie of ``ids [N, T]`` (row i = the ID of item i; rows distinct, token t in ``[0, vocab_sizes[t])``)."""
        ids = _validated_ids(ids, vocab_sizes)
        order = _lexicographic_order(ids)
        rows = ids[order]
        _check_distinct(rows, order)
        child_starts, node_tokens = [], []
        parent_of_row = torch.full((len(rows),), ROOT, dtype=torch.long, device=rows.device)
        for depth, (is_first, node_of_row) in enumerate(_prefix_nodes(rows)):
            first_rows = is_first.nonzero().squeeze(1)
            n_parents = 1 if depth == 0 else int(parent_of_row[-1]) + 1
            counts = torch.bincount(parent_of_row[first_rows], minlength=n_parents)
            child_starts.append(torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]))
            node_tokens.append(rows[first_rows, depth].contiguous())
            parent_of_row = node_of_row
        return cls(ids, tuple(int(v) for v in vocab_sizes), child_starts, node_tokens, order)

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
            [starts.to(device) for starts in self.child_starts],
            [tokens.to(device) for tokens in self.node_tokens],
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
        return 1 if depth < 0 else len(self.node_tokens[depth])

    def nbytes(self) -> int:
        """Bytes held by the trie's tensors (the ID table, the child lists, the leaf items)."""
        tensors = [self.ids, self.leaf_item, *self.child_starts, *self.node_tokens]
        return sum(tensor.numel() * tensor.element_size() for tensor in tensors)

    def children(self, depth: int, parents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens and node indices (at ``depth``) of the children of ``parents [...]`` (nodes of depth ``depth - 1``;
        ``PAD``: no parent), each ``[..., C]`` padded with ``PAD``; ``C`` (at least 1) is the largest family among them
        (read back from the device: one synchronisation per call)."""
        starts = self.child_starts[depth]
        present = parents >= 0
        first = starts[parents.clamp_min(0)]
        count = torch.where(present, starts[parents.clamp_min(0) + 1] - first, 0)
        width = max(1, int(count.max())) if count.numel() else 1
        rank = torch.arange(width, device=parents.device)
        is_child = rank < count[..., None]
        nodes = torch.where(is_child, first[..., None] + rank, PAD)
        tokens = torch.where(is_child, self.node_tokens[depth][nodes.clamp_min(0)], PAD)
        return tokens, nodes

    def item_of(self, id_rows: torch.Tensor) -> torch.Tensor:
        """Item index of each row of ``id_rows [M, T]``, ``PAD`` where the row is not a valid ID."""
        leaf = self.node_of(torch.as_tensor(id_rows, device=self.device).long().reshape(-1, self.depth))
        return torch.where(leaf != PAD, self.leaf_item[leaf.clamp_min(0)], PAD)

    def node_of(self, prefixes: torch.Tensor) -> torch.Tensor:
        """Node index (at depth ``t - 1``) of each valid prefix ``prefixes [M, t]``; ``ROOT`` for ``t = 0``, ``PAD`` where invalid."""
        node = torch.full((len(prefixes),), ROOT, dtype=torch.long, device=self.device)
        for depth in range(prefixes.shape[1]):
            starts, tokens, widest = self.child_starts[depth], self.node_tokens[depth], self.max_children[depth]
            node = torch.where(node >= 0, _find_child(starts, tokens, node.clamp_min(0), prefixes[:, depth], widest), PAD)
        return node

    def item_nodes(self) -> torch.Tensor:
        """``[T, N]``: the node of depth ``d`` that holds item ``i`` (its prefix of length ``d + 1``), for every depth
        (computed once per trie)."""
        if self._item_nodes is not None:
            return self._item_nodes
        nodes = torch.empty(self.depth, len(self), dtype=torch.long, device=self.device)
        for depth, (_, node_of_row) in enumerate(_prefix_nodes(self.ids[self.leaf_item])):  # rows in sorted order
            nodes[depth, self.leaf_item] = node_of_row
        self._item_nodes = nodes
        return nodes

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


def _prefix_nodes(rows: torch.Tensor):
    """For each depth ``d`` of lexicographically sorted ``rows [N, T]``: which rows start a new prefix of length ``d + 1``
    (bool ``[N]``), and the node of depth ``d`` (that prefix, numbered in sorted order) of every row (``[N]``)."""
    changed = torch.zeros(max(len(rows) - 1, 0), dtype=torch.bool, device=rows.device)
    for depth in range(rows.shape[1]):
        changed = changed | (rows[1:, depth] != rows[:-1, depth])
        is_first = torch.cat([changed.new_ones(1), changed])
        yield is_first, torch.cumsum(is_first.long(), 0) - 1


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


def _find_child(starts: torch.Tensor, tokens: torch.Tensor, parents: torch.Tensor, wanted: torch.Tensor, max_children: int) -> torch.Tensor:
    """Node index of the child with token ``wanted[m]`` of each ``parents[m]``, ``PAD`` where there is none.

    A binary search within each parent's sorted family, all rows at once (``ceil(log2(max_children + 1))`` steps).
    """
    low, high = starts[parents], starts[parents + 1]
    end = high
    for _ in range(max(1, max_children).bit_length()):
        middle = (low + high) // 2
        active = low < high
        right = active & (tokens[middle.clamp_max(len(tokens) - 1)] < wanted)
        low = torch.where(right, middle + 1, low)
        high = torch.where(active & ~right, middle, high)
    found = (low < end) & (tokens[low.clamp_max(len(tokens) - 1)] == wanted)
    return torch.where(found, low, PAD)
