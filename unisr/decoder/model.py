"""The seq2seq transformer that writes semantic IDs token by token (T5-style pre-norm blocks).

Encoder input: a task token, ``query_tokens`` soft tokens projected from the frozen sentence
embedding of the query (search; masked out for recommendation), and the history (per code, or
per item as the sum of its code embeddings). Decoder input: a start token and the ID so far.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from unisr.decoder.config import DecoderConfig


class TokenLayout(NamedTuple):
    """Where each kind of token lives in the one shared vocabulary."""

    level_sizes: tuple[int, ...]  # vocabulary of each semantic-ID position (the last is the collision token)
    specials: int = 4  # pad, start, rec task, search task
    user_buckets: int = 0  # hashed user tokens, after the ID tokens

    PAD = 0
    START = 1
    TASK = {"rec": 2, "search": 3}

    @property
    def level_offsets(self) -> tuple[int, ...]:
        offsets, position = [], self.specials
        for size in self.level_sizes:
            offsets.append(position)
            position += size
        return tuple(offsets)

    @property
    def user_offset(self) -> int:
        return self.specials + sum(self.level_sizes)

    @property
    def size(self) -> int:
        return self.user_offset + self.user_buckets

    @property
    def id_length(self) -> int:
        return len(self.level_sizes)


class Attention(nn.Module):
    def __init__(self, d_model: int, heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, head_dim, dropout
        self.query = nn.Linear(d_model, heads * head_dim, bias=False)
        self.key_value = nn.Linear(d_model, 2 * heads * head_dim, bias=False)
        self.out = nn.Linear(heads * head_dim, d_model, bias=False)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def key_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [B, heads, S, head_dim] of ``memory`` (computed once per request when decoding)."""
        key, value = self.key_value(memory).chunk(2, dim=-1)
        return self._split(key), self._split(value)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor | None, mask: torch.Tensor | None, causal: bool = False, cached: tuple | None = None
    ) -> torch.Tensor:
        """``mask``: bool [B, 1, 1, S], True where attending is allowed.

        With ``cached`` keys/values of B requests, ``x`` holds ``len(x) // B`` beams per request (request-major):
        the beams of a request attend to its memory together, so keys and values are neither recomputed nor copied.
        """
        rows, length = x.shape[0], x.shape[1]
        key, value = cached if cached is not None else self.key_values(memory)
        query = self.query(x)
        if cached is not None:
            query = query.reshape(key.shape[0], -1, query.shape[-1])  # [B, beams × length, heads × head_dim]
        attended = F.scaled_dot_product_attention(
            self._split(query),
            key,
            value,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal and mask is None,
        )
        return self.out(attended.transpose(1, 2).reshape(rows, length, -1))


class Block(nn.Module):
    """Pre-norm block: self-attention, optional cross-attention, feed-forward."""

    def __init__(self, config: DecoderConfig, cross: bool):
        super().__init__()
        d = config.d_model
        self.self_norm, self.self_attention = nn.LayerNorm(d), Attention(d, config.heads, config.head_dim, config.dropout)
        self.cross_norm = nn.LayerNorm(d) if cross else None
        self.cross_attention = Attention(d, config.heads, config.head_dim, config.dropout) if cross else None
        self.ff_norm = nn.LayerNorm(d)
        self.feed_forward = nn.Sequential(
            nn.Linear(d, config.feed_forward), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(config.feed_forward, d)
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, self_mask, memory=None, memory_mask=None, causal=False, cached=None):
        h = self.self_norm(x)
        x = x + self.dropout(self.self_attention(h, h, self_mask, causal))
        if self.cross_attention is not None:
            x = x + self.dropout(self.cross_attention(self.cross_norm(x), memory, memory_mask, cached=cached))
        return x + self.dropout(self.feed_forward(self.ff_norm(x)))


class EncoderInput(NamedTuple):
    task: torch.Tensor  # [B] token id of the task
    history: torch.Tensor  # [B, N, T] token ids of the history items' semantic IDs (PAD where absent)
    query: torch.Tensor  # [B, E] frozen sentence embeddings (zeros for recommendation)
    has_query: torch.Tensor  # [B] bool
    user: torch.Tensor | None = None  # [B] token id of the hashed user (PAD where unknown); used when the layout has user buckets


class SemanticIdTransformer(nn.Module):
    def __init__(self, config: DecoderConfig, layout: TokenLayout, query_dim: int):
        super().__init__()
        self.config, self.layout = config, layout
        d = config.d_model
        self.embedding = nn.Embedding(layout.size, d, padding_idx=TokenLayout.PAD)
        history_positions = config.max_history * (layout.id_length if config.history_tokens == "code" else 1)
        self.fixed_positions = 1 + (1 if layout.user_buckets else 0) + config.query_tokens  # task, [user], query tokens
        self.encoder_positions = nn.Embedding(self.fixed_positions + history_positions, d)
        self.decoder_positions = nn.Embedding(layout.id_length, d)
        self.query_projection = nn.Linear(query_dim, config.query_tokens * d)
        self.encoder = nn.ModuleList(Block(config, cross=False) for _ in range(config.encoder_layers))
        self.decoder = nn.ModuleList(Block(config, cross=True) for _ in range(config.decoder_layers))
        self.encoder_norm, self.decoder_norm = nn.LayerNorm(d), nn.LayerNorm(d)
        self.output = nn.Linear(d, layout.size, bias=False)
        self.output.weight = self.embedding.weight  # tied input and output embeddings
        self.register_buffer("level_mask", self._level_mask(layout), persistent=False)

    @staticmethod
    def _level_mask(layout: TokenLayout) -> torch.Tensor:
        """[T, V] True for the tokens that may appear at each position of an ID."""
        mask = torch.zeros(layout.id_length, layout.size, dtype=torch.bool)
        for level, (offset, size) in enumerate(zip(layout.level_offsets, layout.level_sizes, strict=True)):
            mask[level, offset : offset + size] = True
        return mask

    def encode(self, batch: EncoderInput) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states [B, S, d] and their attention mask [B, 1, 1, S]."""
        size = len(batch.task)
        task = self.embedding(batch.task)[:, None]
        query = self.query_projection(batch.query).view(size, self.config.query_tokens, -1)
        history_embedded = self.embedding(batch.history)  # [B, N, T, d]
        if self.config.history_tokens == "code":
            history = history_embedded.flatten(1, 2)
            history_present = batch.history.flatten(1) != TokenLayout.PAD
        else:
            history = history_embedded.sum(2)
            history_present = batch.history[:, :, 0] != TokenLayout.PAD
        always = torch.ones(size, 1, dtype=torch.bool, device=task.device)
        parts, present_parts = [task], [always]
        if self.layout.user_buckets:
            user = batch.user if batch.user is not None else torch.zeros(size, dtype=torch.long, device=task.device)
            parts.append(self.embedding(user)[:, None])
            present_parts.append((user != TokenLayout.PAD)[:, None])
        parts += [query, history]
        present_parts += [batch.has_query[:, None].expand(-1, self.config.query_tokens), history_present]
        states, present = torch.cat(parts, dim=1), torch.cat(present_parts, dim=1)
        states = states + self.encoder_positions.weight[self._positions(history.shape[1], states.device)]
        mask = present[:, None, None, :]
        for block in self.encoder:
            states = block(states, mask)
        return self.encoder_norm(states), mask

    def _positions(self, history_length: int, device: torch.device) -> torch.Tensor:
        """Position ids of [task, query tokens, history]; histories are left-trimmed, so their positions count from the end."""
        fixed = self.fixed_positions
        full = self.encoder_positions.num_embeddings - fixed
        return torch.cat([torch.arange(fixed, device=device), fixed + full - history_length + torch.arange(history_length, device=device)])

    def decode(
        self, prefix: torch.Tensor, memory: torch.Tensor | None, memory_mask: torch.Tensor, cached: list | None = None
    ) -> torch.Tensor:
        """Logits [R, t+1, V] for the next token after each position of ``[START] + prefix``.

        ``cached`` (from ``cross_key_values``) replaces ``memory``: then the R rows are beams, request-major.
        """
        start = torch.full((len(prefix), 1), TokenLayout.START, dtype=torch.long, device=prefix.device)
        tokens = torch.cat([start, prefix], dim=1)
        states = self.embedding(tokens) + self.decoder_positions.weight[: tokens.shape[1]]
        for layer, block in enumerate(self.decoder):
            states = block(states, None, memory, memory_mask, causal=True, cached=None if cached is None else cached[layer])
        return self.output(self.decoder_norm(states))

    def cross_key_values(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per decoder layer, the cross-attention keys and values of the encoder states (once per request)."""
        return [block.cross_attention.key_values(memory) for block in self.decoder]

    def forward(self, batch: EncoderInput, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the target IDs [B, T] (token ids), each position restricted to its level's tokens."""
        memory, memory_mask = self.encode(batch)
        logits = self.decode(target[:, :-1], memory, memory_mask)
        logits = logits.masked_fill(~self.level_mask, float("-inf"))
        return F.cross_entropy(logits.flatten(0, 1), target.flatten())

    def level_log_probs(
        self, prefix: torch.Tensor, memory: torch.Tensor | None, memory_mask: torch.Tensor, cached: list | None = None
    ) -> torch.Tensor:
        """Log-probabilities [R, V_t] of the next ID token (level t = prefix length), in level-local numbering."""
        level = prefix.shape[1]
        offset, size = self.layout.level_offsets[level], self.layout.level_sizes[level]
        logits = self.decode(prefix, memory, memory_mask, cached)[:, -1, offset : offset + size]
        return logits.log_softmax(dim=-1)
