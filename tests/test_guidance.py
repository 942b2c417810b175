"""Content guidance of beam search: the tokenizer's residual prior, its wiring into generation and the retriever."""

from __future__ import annotations

import pytest
import torch

from unisr.decoder.config import DecoderConfig
from unisr.decoder.generate import Guide, generate
from unisr.decoder.guidance import CodePrior, Guidance
from unisr.decoder.model import EncoderInput, SemanticIdTransformer, TokenLayout
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
