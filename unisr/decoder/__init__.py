"""Seq2seq semantic-ID decoder and constrained beam search."""
