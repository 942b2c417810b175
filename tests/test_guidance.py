"""Content guidance of beam search: the tokenizer's residual prior, the exact item prior, their wiring into generation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from unisr.decoder.config import DecoderConfig
from unisr.decoder.examples import REC, SEARCH, Examples
from unisr.decoder.generate import Guide, generate
from unisr.decoder.guidance import CodePrior, Guidance, ItemGuide, ItemPrior
from unisr.decoder.inputs import AnchorLatents, InputBuilder
from unisr.decoder.model import EncoderInput, SemanticIdTransformer, Targets, TokenLayout
from unisr.decoder.trie import PrefixTrie
from unisr.errors import UnisrError
from unisr.tokenizer.ids import collision_tokens
from unisr.tokenizer.quantizer import ResidualQuantizer

LEVELS, CODES, DIM = 3, 8, 6


def fitted_quantizer(items: int = 200) -> tuple[ResidualQuantizer, torch.Tensor, torch.Tensor]:
    """A residual quantizer initialised by residual k-means on random latents, the latents and their codes."""
    latents = torch.randn(items, DIM, generator=torch.Generator().manual_seed(0))
    quantizer = ResidualQuantizer(LEVELS, CODES, DIM)
    quantizer.initialise_with_kmeans(latents, seed=0)
    return quantizer, latents, quantizer.encode(latents)


def test_prior_follows_the_residual_quantization_of_the_anchor():
    quantizer, latents, codes = fitted_quantizer()
    prior = CodePrior.fit(quantizer.codebooks.detach(), latents, (CODES,) * LEVELS + (4,))
    present = torch.ones(len(latents), dtype=torch.bool)
    for depth in range(LEVELS):
        log_probs = prior.log_probs(codes[:, :depth], latents, present)
        assert log_probs.shape == (len(latents), CODES)
        assert torch.allclose(log_probs.exp().sum(1), torch.ones(len(latents)), atol=1e-5)
        assert torch.equal(log_probs.argmax(1), codes[:, depth])  # the nearest codeword of the residual = the quantizer's code
    collision = prior.log_probs(torch.cat([codes, codes[:, :1]], 1)[:, :LEVELS], latents, present)
    assert torch.equal(collision, torch.zeros(len(latents), 4))  # the collision token carries no content
    absent = prior.log_probs(codes[:, :1], latents, torch.zeros(len(latents), dtype=torch.bool))
    assert torch.equal(absent, torch.zeros(len(latents), CODES))  # no anchor → flat


def test_prior_scales_are_the_items_mean_quantization_errors():
    quantizer, latents, codes = fitted_quantizer()
    prior = CodePrior.fit(quantizer.codebooks.detach(), latents, (CODES,) * LEVELS + (4,))
    first_error = (latents - quantizer.codebooks[0].detach()[codes[:, 0]]).pow(2).sum(1).mean()
    assert torch.isclose(prior.scales[0], first_error, rtol=1e-4)
    assert prior.scales[1] < prior.scales[0]  # residuals shrink level by level


def test_strong_guidance_decodes_the_anchors_own_codes():
    """With a random decoder and a heavy prior weight, decoding an item's latent finds that item's codes."""
    quantizer, latents, codes = fitted_quantizer(items=60)
    collision = torch.from_numpy(collision_tokens(codes.numpy()))
    ids = torch.cat([codes, collision[:, None]], 1)
    layout = TokenLayout((CODES,) * LEVELS + (int(collision.max()) + 1,))
    trie = PrefixTrie.from_ids(ids, layout.level_sizes)
    torch.manual_seed(0)
    config = DecoderConfig(encoder_layers=1, decoder_layers=1, d_model=16, heads=2, head_dim=8, feed_forward=32, history_content=False)
    model = SemanticIdTransformer(config, layout, query_dim=5).eval()
    size = 12
    batch = EncoderInput(
        torch.full((size,), TokenLayout.TASK["search"]),
        torch.zeros(size, 0, len(layout.level_sizes), dtype=torch.long),
        torch.randn(size, 5),
        torch.ones(size, dtype=torch.bool),
    )
    prior = CodePrior.fit(quantizer.codebooks.detach(), latents, layout.level_sizes)
    with torch.no_grad():
        plain = generate(model, batch, trie, beam_size=8, top_k=1)
        guide = Guide(prior, latents[:size], torch.ones(size, dtype=torch.bool), weight=1000.0)
        greedy = generate(model, batch, trie, beam_size=1, top_k=1, guide=guide)
        guided = generate(model, batch, trie, beam_size=8, top_k=1, guide=guide)
        unweighted = generate(model, batch, trie, beam_size=8, top_k=1, guide=guide._replace(weight=0.0))
    assert torch.equal(greedy.ids[:, 0, :LEVELS], codes[:size])  # one beam = the quantizer's greedy nearest codewords
    assert (guided.scores[:, 0] >= greedy.scores[:, 0] - 1e-3).all()  # a wider beam finds IDs at least as likely
    assert (guided.ids[:, 0, :LEVELS] == codes[:size]).all(1).float().mean() >= 0.75
    assert not torch.equal(plain.ids[:, 0, :LEVELS], codes[:size])  # the random decoder alone does not find them
    assert torch.equal(unweighted.items, plain.items) and torch.equal(unweighted.scores, plain.scores)


def test_guidance_weights_are_per_task():
    guidance = Guidance(rec=0.5, search=2.0)
    assert guidance.weight("rec") == 0.5 and guidance.weight("search") == 2.0
    assert Guidance() == (0.0, 0.0)


@pytest.mark.parametrize("weights", [(-1.0, 0.0), (0.0, -0.5)])
def test_negative_guidance_is_refused_by_the_config(weights):
    with pytest.raises(UnisrError, match="guidance"):
        DecoderConfig(guidance_rec=weights[0], guidance_search=weights[1])


def test_training_loss_with_the_prior_matches_the_decoding_scores():
    """A model trained with ``guidance_training`` w: −T × its loss on an ID = the guided beam score of that ID (same distribution)."""
    torch.manual_seed(0)
    layout = TokenLayout((3, 3, 2))
    config = DecoderConfig(encoder_layers=1, decoder_layers=1, d_model=16, heads=2, head_dim=8, feed_forward=32, dropout=0.0)
    model = SemanticIdTransformer(DecoderConfig(**{**config.__dict__, "history_content": False}), layout, query_dim=5).eval()
    ids = torch.tensor(list(itertools.product(range(3), range(3), range(2))))
    trie = PrefixTrie.from_ids(ids, layout.level_sizes)
    prior = CodePrior(torch.randn(2, 3, 4), torch.tensor([0.7, 0.3]), layout.level_sizes)
    anchors, present, weight = torch.randn(2, 4), torch.tensor([True, False]), 1.5
    batch = EncoderInput(
        torch.full((2,), TokenLayout.TASK["search"]),
        torch.zeros(2, 0, 3, dtype=torch.long),
        torch.randn(2, 5),
        torch.ones(2, dtype=torch.bool),
    )
    with torch.no_grad():
        result = generate(model, batch, trie, len(ids), len(ids), guide=Guide(prior, anchors, present, 0.0, weight))
        for request in range(2):
            found = result.ids[request]
            rows = torch.full((len(found),), request)
            targets = Targets(rows, torch.zeros_like(rows), found + torch.tensor(layout.level_offsets))
            log_prior = weight * prior.teacher_forced(found[:, :2], anchors[rows], present[rows])
            losses = model.target_losses(batch, targets, log_prior)
            assert torch.allclose(-losses * 3, result.scores[request], atol=1e-4)


def test_training_anchors_are_the_last_visible_item_or_the_query():
    items, queries = torch.arange(10.0)[:, None].repeat(1, 2), 100 + torch.arange(3.0)[:, None].repeat(1, 2)
    builder = InputBuilder(
        TokenLayout((3, 3, 2)), torch.zeros(10, 3, dtype=torch.long), torch.zeros(3, 5), None, AnchorLatents(items, queries)
    )
    part = Examples(
        task=np.array([REC, SEARCH]),
        history=np.array([[-1, 5, 6, 7], [-1, -1, -1, 4]]),
        query=np.array([-1, 2]),
        request=np.array([0, 1]),
        user=np.array([-1, -1]),
        first_target=np.array([0, 2]),
        target_count=np.array([2, 1]),
        target_item=np.array([7, 8, 9]),
        target_visible=np.array([2, 3, 1]),
    )
    anchors, present = builder.target_anchors(part)
    assert anchors[:, 0].tolist() == [6.0, 7.0, 102.0] and present.tolist() == [True, True, True]


def item_prior_case(items: int = 90, requests: int = 5, seed: int = 0):
    """A trie of ``items`` IDs with shared prefixes (and collision tokens), item vectors and anchors."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 3, (items, 3), generator=generator)
    ids = torch.cat([codes, torch.from_numpy(collision_tokens(codes.numpy()))[:, None]], 1)
    trie = PrefixTrie.from_ids(ids, (3, 3, 3, int(ids[:, 3].max()) + 1))
    vectors, anchors = torch.randn(items, 7, generator=generator), torch.randn(requests, 7, generator=generator)
    return trie, ids, torch.nn.functional.normalize(vectors, dim=1), anchors  # the item prior reads unit item rows


def test_item_prior_factorizes_the_softmax_over_all_items_along_the_trie():
    """The prior's terms along an item's ID sum to that item's log-softmax of standardized cosines; each step sums to 1."""
    trie, ids, vectors, anchors = item_prior_case()
    present = torch.tensor([True, True, False, True, True])
    prior = ItemPrior(trie, ItemGuide(vectors, anchors, present))
    cosine = torch.nn.functional.normalize(anchors, dim=1) @ torch.nn.functional.normalize(vectors, dim=1).T
    z = (cosine - cosine.mean(1, keepdim=True)) / cosine.std(1, keepdim=True)
    expected = z.log_softmax(dim=1)  # [requests, items]
    for request in range(len(anchors)):
        batch_index = torch.full((len(ids),), request)
        total = torch.zeros(len(ids))
        for depth in range(trie.depth):
            log_probs = prior.log_probs(ids[:, :depth], batch_index)
            total += log_probs.gather(1, ids[:, depth : depth + 1]).squeeze(1)
            tokens, _ = trie.children(depth, trie.node_of(ids[:, :depth]))
            children = log_probs.gather(1, tokens.clamp_min(0)).masked_fill(tokens < 0, float("-inf"))
            if present[request]:
                assert torch.allclose(children.logsumexp(1), torch.zeros(len(ids)), atol=1e-5)
        if present[request]:
            assert torch.allclose(total, expected[request], atol=1e-4)
        else:
            assert torch.equal(total, torch.zeros(len(ids)))  # no anchor → flat


def heavy_item_guide(trie: PrefixTrie, vectors: torch.Tensor, anchors: torch.Tensor) -> tuple[SemanticIdTransformer, EncoderInput, Guide]:
    """A tiny random search model over ``trie``, a batch of one search request per anchor, and an item-prior guide of weight 1e4."""
    torch.manual_seed(0)
    config = DecoderConfig(encoder_layers=1, decoder_layers=1, d_model=16, heads=2, head_dim=8, feed_forward=32, history_content=False)
    model = SemanticIdTransformer(config, TokenLayout(trie.vocab_sizes), query_dim=5).eval()
    size = len(anchors)
    present = torch.ones(size, dtype=torch.bool)
    history = torch.zeros(size, 0, trie.depth, dtype=torch.long)
    batch = EncoderInput(torch.full((size,), TokenLayout.TASK["search"]), history, torch.randn(size, 5), present)
    return model, batch, Guide(None, torch.zeros(size, 0), present, 1e4, items=ItemGuide(vectors, anchors, present))


def test_heavy_item_prior_with_a_full_beam_ranks_as_dense_retrieval():
    trie, ids, vectors, anchors = item_prior_case(items=60, requests=4, seed=1)
    model, batch, guide = heavy_item_guide(trie, vectors, anchors)
    result = generate(model, batch, trie, beam_size=len(ids), top_k=5, guide=guide)
    dense = (torch.nn.functional.normalize(anchors, dim=1) @ torch.nn.functional.normalize(vectors, dim=1).T).topk(5).indices
    assert torch.equal(result.items, dense)
    assert not torch.equal(generate(model, batch, trie, beam_size=len(ids), top_k=5).items, dense)


def test_item_prior_refuses_vectors_that_do_not_match_the_trie():
    trie, _, vectors, anchors = item_prior_case()
    with pytest.raises(ValueError, match="89 item vectors for a trie of 90 items"):
        ItemPrior(trie, ItemGuide(vectors[:-1], anchors, torch.ones(len(anchors), dtype=torch.bool)))


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"guidance_prior_rec": "latent"}, "guidance_prior_rec='latent': choose from codes, items, both"),
        ({"guidance_prior_search": ""}, "guidance_prior_search='': choose from codes, items, both"),
        ({"guidance_priors": ("codes", "bm25")}, "guidance_priors='codes,bm25': choose one or more of codes, items, both"),
        ({"guidance_priors": ()}, "guidance_priors='': choose one or more of codes, items, both"),
    ],
)
def test_unknown_guidance_priors_are_refused_by_the_config(setting, message):
    with pytest.raises(UnisrError, match=message):
        DecoderConfig(**setting)


def test_item_prior_over_the_cold_trie_reads_the_cold_items_vectors():
    """With a cold reserve, the cold items' own trie is decoded with the item prior over their vectors: a heavy weight
    puts the cold item nearest the anchor in the reserved rank."""
    from unisr.decoder.generate import ColdReserve

    trie, ids, vectors, anchors = item_prior_case(items=60, requests=3, seed=2)
    model, batch, guide = heavy_item_guide(trie, vectors, anchors)
    cold_rows = torch.arange(40, 60)
    cold = ColdReserve(PrefixTrie.from_ids(ids[cold_rows], trie.vocab_sizes), cold_rows, 0.5)
    result = generate(model, batch, trie, beam_size=len(ids), top_k=2, guide=guide, cold=cold)
    similarity = torch.nn.functional.normalize(anchors, dim=1) @ torch.nn.functional.normalize(vectors, dim=1).T
    best_cold = cold_rows[similarity[:, cold_rows].topk(2).indices]  # [3, 2]
    warm_best = similarity.argmax(1)
    expected = torch.where(warm_best == best_cold[:, 0], best_cold[:, 1], best_cold[:, 0])  # rank 2 is reserved for a cold item
    assert torch.equal(result.items[:, 0], warm_best) and torch.equal(result.items[:, 1], expected)


def test_item_prior_follows_the_beams_to_the_nodes_it_would_search(monkeypatch):
    """Beam search hands the item prior each new beam's parent row; the nodes it derives from them are the ones a search
    of the trie finds, so decoding with and without following the beams gives the same items and scores."""
    trie, _, vectors, anchors = item_prior_case(items=90, requests=4, seed=3)
    model, batch, guide = heavy_item_guide(trie, vectors, anchors)
    guide = guide._replace(weight=0.7)  # the decoder and the prior both matter
    followed = generate(model, batch, trie, beam_size=4, top_k=3, guide=guide)
    monkeypatch.setattr(ItemPrior, "keep_rows", lambda self, parents: None)  # every call searches its prefixes' nodes
    searched = generate(model, batch, trie, beam_size=4, top_k=3, guide=guide)
    assert torch.equal(followed.items, searched.items) and torch.allclose(followed.scores, searched.scores)


def test_both_priors_score_the_mean_of_the_code_and_item_log_priors():
    """With ``item_share`` 0.5 each item's score is the mean of its scores under the code prior alone and the item prior alone
    (a full beam keeps every item, so every item's total is compared)."""
    trie, ids, vectors, anchors = item_prior_case(items=40, requests=3, seed=4)
    model, batch, guide = heavy_item_guide(trie, vectors, anchors)
    generator = torch.Generator().manual_seed(4)
    codebooks = torch.randn(3, 3, 6, generator=generator)
    code_prior = CodePrior(codebooks, torch.ones(3), trie.vocab_sizes)
    guide = guide._replace(prior=code_prior, anchors=torch.randn(len(anchors), 6, generator=generator), weight=2.0)

    def totals(share: float, with_items: bool) -> torch.Tensor:
        used = guide._replace(items=guide.items if with_items else None, item_share=share)
        result = generate(model, batch, trie, beam_size=len(ids), top_k=len(ids), guide=used)
        return result.scores.gather(1, result.items.argsort(dim=1))  # [requests, items] in item order

    codes, items, both = totals(1.0, False), totals(1.0, True), totals(0.5, True)
    assert torch.allclose(both, (codes + items) / 2, atol=1e-4)
    assert not torch.allclose(codes, items, atol=1e-2)  # the two priors differ, so the mean is a third ranking
