"""Constrained beam search over a prefix trie of semantic IDs: validity, exactness, exclusions, call pattern."""

from __future__ import annotations

import pytest
import torch

from unisr.decoder.beam import DEAD, NO_ITEM, BeamResult, constrained_beam_search
from unisr.decoder.generate import cold_ranks, reserve_slots
from unisr.decoder.trie import PAD, PrefixTrie

SEEDS = range(6)
DEPTHS = (2, 3, 4)
MAX_VOCAB = 7
MAX_ITEMS = 300
BATCH = 3


class RandomScorer:
    """Log-softmax of a random function of (request, full prefix) per depth; records the shape of each call."""

    def __init__(self, vocab_sizes: list[int], batch: int, seed: int, sharpness: float = 3.0):
        gen = torch.Generator().manual_seed(seed)
        width = max(vocab_sizes)
        self.bias = [sharpness * torch.randn(batch, v, generator=gen) for v in vocab_sizes]
        self.weights = [sharpness * torch.randn(d, width, v, generator=gen) for d, v in enumerate(vocab_sizes)]
        self.calls: list[tuple[int, int]] = []

    def __call__(self, prefixes: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        depth = prefixes.shape[1]
        self.calls.append((prefixes.shape[0], depth))
        logits = self.bias[depth][batch_index]
        for position in range(depth):
            logits = logits + self.weights[depth][position][prefixes[:, position]]
        return torch.log_softmax(logits, dim=1)


def random_table(seed: int, depth: int) -> tuple[torch.Tensor, list[int]]:
    """Distinct random IDs over random vocabulary sizes (some of size 1, so some prefixes have one child)."""
    gen = torch.Generator().manual_seed(1000 + seed)
    vocab_sizes = torch.randint(1, MAX_VOCAB + 1, (depth,), generator=gen).tolist()
    vocab_sizes[seed % depth] = 1 if seed % 2 else vocab_sizes[seed % depth]
    total = int(torch.tensor(vocab_sizes).prod())
    n_items = int(torch.randint(1, min(MAX_ITEMS, total) + 1, (1,), generator=gen))
    codes = torch.randperm(total, generator=gen)[:n_items]
    ids = torch.zeros(n_items, depth, dtype=torch.long)
    for position in reversed(range(depth)):
        ids[:, position] = codes % vocab_sizes[position]
        codes = codes // vocab_sizes[position]
    return ids, vocab_sizes


def exhaustive_scores(scorer: RandomScorer, ids: torch.Tensor, batch: int) -> torch.Tensor:
    """Score [B, N] of every ID for every request: the sum over depths of the log-prob of its token."""
    total = torch.zeros(batch, len(ids))
    for b in range(batch):
        batch_index = torch.full((len(ids),), b, dtype=torch.long)
        for depth in range(ids.shape[1]):
            log_probs = scorer(ids[:, :depth], batch_index)
            total[b] += log_probs.gather(1, ids[:, depth : depth + 1]).squeeze(1)
    scorer.calls.clear()
    return total


def exhaustive_top(scores: torch.Tensor, top_k: int, exclude: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k items and scores of the exhaustive table, padded with -1 / -inf like BeamResult."""
    scores = scores.clone()
    if exclude is not None:
        for b, row in enumerate(exclude.tolist()):
            scores[b, [i for i in row if i != PAD]] = DEAD
    k = min(top_k, scores.shape[1])
    values, items = scores.topk(k, dim=1)
    items = torch.where(values > DEAD, items, NO_ITEM)
    pad = top_k - k
    return torch.nn.functional.pad(items, (0, pad), value=NO_ITEM), torch.nn.functional.pad(values, (0, pad), value=DEAD)


def check_valid(result, trie: PrefixTrie) -> None:
    """Every live slot is a row of the table mapping to its item; no duplicates; dead slots are -1 / -inf; sorted."""
    live = result.items != NO_ITEM
    assert torch.equal(live, result.scores > DEAD)
    assert torch.equal(result.ids[live], trie.ids[result.items[live]])
    assert bool((result.ids[~live] == NO_ITEM).all())
    assert bool(trie.contains(result.ids[live]).all())
    assert torch.equal(trie.item_of(result.ids[live]), result.items[live])
    for row in result.items.tolist():
        found = [i for i in row if i != NO_ITEM]
        assert len(found) == len(set(found))
    assert bool((result.scores[:, :-1] >= result.scores[:, 1:]).all())


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("seed", SEEDS)
def test_random_tables_valid_and_exact(seed: int, depth: int) -> None:
    ids, vocab_sizes = random_table(seed, depth)
    trie = PrefixTrie.from_ids(ids, vocab_sizes)
    scorer = RandomScorer(vocab_sizes, BATCH, seed)
    full = exhaustive_scores(scorer, ids, BATCH)
    for beam_size, top_k in ((1, 1), (4, 3), (16, 10)):
        result = constrained_beam_search(scorer, trie, BATCH, beam_size, top_k)
        check_valid(result, trie)
        assert bool(((result.items != NO_ITEM).sum(dim=1) == min(top_k, len(ids))).all())
        live = result.items != NO_ITEM
        expected = full.gather(1, result.items.clamp_min(0))
        assert torch.allclose(result.scores[live], expected[live], atol=1e-4)
    top_k = 10
    result = constrained_beam_search(scorer, trie, BATCH, max(len(ids), top_k), top_k)
    items, scores = exhaustive_top(full, top_k)
    assert torch.equal(result.items, items)
    assert torch.allclose(result.scores, scores, atol=1e-4)


@pytest.mark.parametrize("seed", SEEDS)
def test_exclusions_match_exhaustive(seed: int) -> None:
    ids, vocab_sizes = random_table(seed, 3)
    trie = PrefixTrie.from_ids(ids, vocab_sizes)
    scorer = RandomScorer(vocab_sizes, BATCH, seed)
    full = exhaustive_scores(scorer, ids, BATCH)
    gen = torch.Generator().manual_seed(seed)
    exclude = torch.randint(-1, len(ids), (BATCH, 5), generator=gen)
    top_k = 8
    result = constrained_beam_search(scorer, trie, BATCH, max(len(ids), top_k), top_k, exclude_items=exclude)
    check_valid(result, trie)
    for row, banned in zip(result.items.tolist(), exclude.tolist(), strict=True):
        assert not set(row) & (set(banned) - {PAD})
    items, scores = exhaustive_top(full, top_k, exclude)
    assert torch.equal(result.items, items)
    assert torch.allclose(result.scores, scores, atol=1e-4)


def test_excluding_everything_kills_only_that_request() -> None:
    ids, vocab_sizes = random_table(2, 3)
    trie = PrefixTrie.from_ids(ids, vocab_sizes)
    scorer = RandomScorer(vocab_sizes, BATCH, 0)
    exclude = torch.full((BATCH, len(ids)), PAD)
    exclude[1] = torch.arange(len(ids))
    plain = constrained_beam_search(scorer, trie, BATCH, 6, 4)
    result = constrained_beam_search(scorer, trie, BATCH, 6, 4, exclude_items=exclude)
    assert bool((result.items[1] == NO_ITEM).all())
    assert bool((result.scores[1] == DEAD).all())
    assert bool((result.ids[1] == NO_ITEM).all())
    for b in (0, 2):
        assert torch.equal(result.items[b], plain.items[b])
        assert torch.equal(result.scores[b], plain.scores[b])


def test_subtree_with_only_excluded_leaves() -> None:
    ids = torch.tensor([[0, 0], [0, 1], [1, 0], [2, 1]])
    trie = PrefixTrie.from_ids(ids, [3, 2])
    favour_zero = torch.log_softmax(torch.tensor([5.0, 0.0, -1.0]), dim=0)
    favour_first = torch.log_softmax(torch.tensor([1.0, 0.0]), dim=0)

    def score_step(prefixes: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        table = favour_zero if prefixes.shape[1] == 0 else favour_first
        return table.expand(len(prefixes), -1)

    exclude = torch.tensor([[0, 1], [PAD, PAD]])
    wide = constrained_beam_search(score_step, trie, 2, 4, 2, exclude_items=exclude)
    assert wide.items.tolist() == [[2, 3], [0, 1]]
    narrow = constrained_beam_search(score_step, trie, 2, 1, 1, exclude_items=exclude)
    assert narrow.items.tolist() == [[NO_ITEM], [0]]  # the only beam entered the excluded subtree and died
    assert narrow.scores[0, 0] == DEAD


@pytest.mark.parametrize("depth", DEPTHS)
def test_score_step_called_once_per_depth(depth: int) -> None:
    ids, vocab_sizes = random_table(4, depth)
    trie = PrefixTrie.from_ids(ids, vocab_sizes)
    scorer = RandomScorer(vocab_sizes, BATCH, 1)
    beam_size = 5
    constrained_beam_search(scorer, trie, BATCH, beam_size, 2)
    assert scorer.calls == [(BATCH, 0)] + [(BATCH * beam_size, t) for t in range(1, depth)]


@pytest.mark.parametrize("seed", SEEDS)
def test_keep_rows_names_the_row_each_beam_extends(seed: int) -> None:
    """After each depth but the last, ``keep_rows`` gets the row of that depth's call whose prefix each new row extends."""
    ids, vocab_sizes = random_table(seed, 4)
    trie = PrefixTrie.from_ids(ids, vocab_sizes)
    scorer, prefixes, parents = RandomScorer(vocab_sizes, BATCH, seed), [], []

    def score_step(prefix: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        prefixes.append((prefix, batch_index))
        return scorer(prefix, batch_index)

    plain = constrained_beam_search(scorer, trie, BATCH, 4, 3)
    kept = constrained_beam_search(score_step, trie, BATCH, 4, 3, keep_rows=parents.append)
    assert torch.equal(kept.items, plain.items) and len(parents) == trie.depth - 1
    for depth, rows in enumerate(parents):
        (before, before_index), (after, after_index) = prefixes[depth], prefixes[depth + 1]
        assert torch.equal(after[:, :depth], before[rows]) and torch.equal(after_index, before_index[rows])


def test_with_items_keeps_old_indices() -> None:
    old = torch.tensor([[0, 1, 0], [2, 2, 1], [1, 0, 0]])
    new = torch.tensor([[0, 1, 1], [3, 0, 0]])
    vocab_sizes = [4, 3, 2]
    trie = PrefixTrie.from_ids(old, vocab_sizes).with_items(new)
    assert len(trie) == 5
    assert torch.equal(trie.ids, torch.cat([old, new]))
    assert trie.item_of(torch.cat([old, new])).tolist() == [0, 1, 2, 3, 4]
    scorer = RandomScorer(vocab_sizes, 1, 0)
    result = constrained_beam_search(scorer, trie, 1, 5, 5, exclude_items=torch.tensor([[0, 1, 2]]))
    assert sorted(i for i in result.items[0].tolist() if i != NO_ITEM) == [3, 4]
    with pytest.raises(ValueError, match="share the semantic ID"):
        trie.with_items(old[:1])


def test_trie_tables_and_lookup() -> None:
    ids = torch.tensor([[1, 0], [0, 2], [0, 0], [1, 1], [2, 2]])
    trie = PrefixTrie.from_ids(ids, [3, 3])
    assert [starts.tolist() for starts in trie.child_starts] == [[0, 3], [0, 2, 4, 5]]
    assert [tokens.tolist() for tokens in trie.node_tokens] == [[0, 1, 2], [0, 2, 0, 1, 2]]
    assert trie.max_children == (3, 2)
    assert trie.children(0, torch.tensor([0]))[0].tolist() == [[0, 1, 2]]
    tokens, nodes = trie.children(1, torch.tensor([0, 1, 2, PAD]))
    assert tokens.tolist() == [[0, 2], [0, 1], [2, PAD], [PAD, PAD]]
    assert nodes.tolist() == [[0, 1], [2, 3], [4, PAD], [PAD, PAD]]
    assert trie.children(1, torch.tensor([[2], [PAD]]))[1].tolist() == [[[4]], [[PAD]]]  # width: the largest family asked for
    assert trie.leaf_item.tolist() == [2, 1, 0, 3, 4]
    assert trie.nbytes() == 8 * (10 + 5 + 2 + 4 + 3 + 5)
    assert trie.contains(torch.tensor([[0, 2], [0, 1], [2, 2], [2, 0], [-1, 0]])).tolist() == [True, False, True, False, False]
    single = PrefixTrie.from_ids(torch.tensor([[0, 0, 0]]), [1, 1, 1])
    result = constrained_beam_search(RandomScorer([1, 1, 1], 2, 0), single, 2, 3, 2)
    assert result.items.tolist() == [[0, NO_ITEM], [0, NO_ITEM]]


def test_skewed_fan_out_stays_linear_and_exact() -> None:
    """One parent with 500 children beside 500 single-child parents: tables grow with the items, not nodes x fan-out."""
    wide = torch.stack([torch.zeros(500, dtype=torch.long), torch.arange(500)], dim=1)
    narrow = torch.stack([torch.arange(1, 501), torch.arange(500) % 7], dim=1)
    ids, vocab_sizes = torch.cat([wide, narrow]), [501, 500]
    trie = PrefixTrie.from_ids(ids, vocab_sizes)
    assert trie.max_children == (501, 500)
    assert sum(t.numel() for t in [*trie.child_starts, *trie.node_tokens]) <= 3 * len(ids) + 4
    assert torch.equal(trie.item_of(ids), torch.arange(len(ids)))
    assert not bool(trie.contains(torch.tensor([[1, 1], [0, 500], [501, 0]])).any())
    scorer = RandomScorer(vocab_sizes, BATCH, 5)
    items, scores = exhaustive_top(exhaustive_scores(scorer, ids, BATCH), 10)
    result = constrained_beam_search(scorer, trie, BATCH, len(ids), 10)
    check_valid(result, trie)
    assert torch.equal(result.items, items)
    assert torch.allclose(result.scores, scores, atol=1e-4)


@pytest.mark.parametrize(
    ("ids", "vocab_sizes", "message"),
    [
        (torch.tensor([[0, 1], [0, 1]]), [2, 2], "share the semantic ID"),
        (torch.tensor([[0, 2]]), [2, 2], "outside"),
        (torch.tensor([[0, -1]]), [2, 2], "outside"),
        (torch.tensor([[0, 1]]), [2, 2, 2], "vocabulary sizes"),
        (torch.tensor([[0.0, 1.0]]), [2, 2], "integer"),
        (torch.zeros(0, 2, dtype=torch.long), [2, 2], "non-empty"),
    ],
)
def test_invalid_tables_rejected(ids: torch.Tensor, vocab_sizes: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PrefixTrie.from_ids(ids, vocab_sizes)


def test_invalid_search_arguments_rejected() -> None:
    trie = PrefixTrie.from_ids(torch.tensor([[0, 1], [1, 0]]), [2, 2])
    scorer = RandomScorer([2, 2], 1, 0)
    with pytest.raises(ValueError, match="beam_size"):
        constrained_beam_search(scorer, trie, 1, 2, 3)
    with pytest.raises(ValueError, match="exclude_items"):
        constrained_beam_search(scorer, trie, 1, 2, 2, exclude_items=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="score_step"):
        constrained_beam_search(lambda p, b: torch.zeros(len(p), 1), trie, 1, 2, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    ids, vocab_sizes = random_table(3, 4)
    trie = PrefixTrie.from_ids(ids, vocab_sizes)
    scorer = RandomScorer(vocab_sizes, BATCH, 3)
    cpu = constrained_beam_search(scorer, trie, BATCH, 8, 5, exclude_items=torch.tensor([[0], [1], [PAD]]))

    def on_cuda(prefixes: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        assert prefixes.is_cuda and batch_index.is_cuda
        return scorer(prefixes.cpu(), batch_index.cpu()).cuda()

    gpu = constrained_beam_search(on_cuda, trie.to("cuda"), BATCH, 8, 5, exclude_items=torch.tensor([[0], [1], [PAD]]))
    assert gpu.items.is_cuda
    assert torch.equal(gpu.items.cpu(), cpu.items)
    assert torch.allclose(gpu.scores.cpu(), cpu.scores)


@pytest.mark.parametrize(
    ("top_k", "share", "ranks"), [(10, 0.1, [10]), (20, 0.1, [10, 20]), (10, 0.25, [4, 8]), (5, 0.1, []), (3, 1.0, [1, 2, 3])]
)
def test_cold_ranks_spread_the_share(top_k: int, share: float, ranks: list[int]) -> None:
    assert (cold_ranks(top_k, share).nonzero().squeeze(1) + 1).tolist() == ranks


@pytest.mark.parametrize("seed", SEEDS)
def test_reserved_ranks_take_the_best_new_cold_items(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    batch, top_k, share = 4, 10, 0.2

    def result(items: torch.Tensor) -> BeamResult:
        scores = -torch.arange(items.shape[1], dtype=torch.float).expand(batch, -1).clone().masked_fill(items < 0, DEAD)
        return BeamResult(items, scores, items[..., None].repeat(1, 1, 3))

    warm = result(torch.stack([torch.randperm(30, generator=gen)[:top_k] for _ in range(batch)]))
    cold_items = torch.stack([torch.randperm(30, generator=gen)[:top_k] for _ in range(batch)])
    cold_items[0, 5:] = NO_ITEM  # fewer cold candidates than slots after duplicates: warm ones fill the gap
    merged = reserve_slots(warm, result(cold_items), share)
    reserved = cold_ranks(top_k, share)
    keep = top_k - int(reserved.sum())
    for row in range(batch):
        head = warm.items[row, :keep].tolist()
        pool = [item for item in cold_items[row].tolist() + warm.items[row, keep:].tolist() if item >= 0]
        fill = [item for position, item in enumerate(pool) if item not in head and item not in pool[:position]][: top_k - keep]
        assert merged.items[row, ~reserved].tolist() == head
        assert merged.items[row, reserved].tolist() == fill
        assert len(set(merged.items[row].tolist())) == top_k
        assert torch.equal(merged.ids[row, :, 0], merged.items[row])


def test_a_short_list_is_closed_up_by_the_other() -> None:
    def result(items: list[int]) -> BeamResult:
        items = torch.tensor([items])
        return BeamResult(items, torch.where(items >= 0, -1.0, DEAD), items[..., None])

    warm = result([1, 2, 3, 4, 5, 6, -1, -1, -1, -1])  # six live entries (the others died under exclusions)
    merged = reserve_slots(warm, result([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]), 0.2)
    assert merged.items[0].tolist() == [1, 2, 3, 4, 11, 5, 6, 12, 13, 14]
    merged = reserve_slots(result(list(range(1, 11))), result([3, 12, -1, -1, -1, -1, -1, -1, -1, -1]), 0.2)
    assert merged.items[0].tolist() == [1, 2, 3, 4, 12, 5, 6, 7, 8, 9]  # no second cold item: the warm tail closes up
