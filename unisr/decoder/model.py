"""The seq2seq transformer that writes semantic IDs token by token (T5-style pre-norm blocks).

Encoder input: a task token, [a hashed user token], ``query_tokens`` soft tokens projected from the
frozen sentence embedding of the query (search; masked out for recommendation), [the query's first
``query_pieces`` word pieces, each a learned embedding: the words themselves, beside their meaning], then the history,
one token per item (the sum of its code embeddings, plus a projection of the item's frozen content
embedding with ``history_content``), oldest first. The encoder is **causal**: a
history item's state depends on the tokens before it only, so one pass over a user's history serves
the next-item target after every position. Each target's decoder cross-attends to the task/user/query
tokens and to the history items it may see, with a learned per-head bias by recency (how many items
back), so a target after ``t`` items is scored exactly as a separate example whose history is those
``t`` items. Decoder input: a start token and the ID so far. Training scores every position at once
(:meth:`SemanticIdTransformer.decode`); beam search feeds one position per depth (:meth:`~SemanticIdTransformer.decode_step`,
with the earlier positions' self-attention keys/values cached) and gives the same log-probabilities up to float rounding.
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
    query_piece_vocab: int = 0  # word pieces of query texts (their own embedding table, outside this vocabulary); 0 = none

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


class EncoderInput(NamedTuple):
    task: torch.Tensor  # [B] token id of the task
    history: torch.Tensor  # [B, N, T] token ids of the history items' semantic IDs, oldest first, PAD rows on the left
    query: torch.Tensor  # [B, E] frozen sentence embeddings (zeros for recommendation)
    has_query: torch.Tensor  # [B] bool
    user: torch.Tensor | None = None  # [B] token id of the hashed user (PAD where unknown); used when the layout has user buckets
    history_content: torch.Tensor | None = None  # [B, N, E] frozen content embeddings of the history items (zeros where absent)
    query_pieces: torch.Tensor | None = None  # [B, P ≤ query_pieces] word-piece ids of the query (0 = padding); models that read them


class Memory(NamedTuple):
    """Encoder output: states and what each position is."""

    states: torch.Tensor  # [B, S, d]
    present: torch.Tensor  # [B, S] bool: a real token, not padding
    item_index: torch.Tensor  # [B, S] long: history item's index from the oldest (0, 1, …); -1 for task/user/query tokens
    history_length: torch.Tensor  # [B] history items present


class Targets(NamedTuple):
    """Training targets: several may share one encoder row (every position of a history, or every relevant item of a query)."""

    row: torch.Tensor  # [R] encoder row of each target
    visible: torch.Tensor  # [R] history items (the oldest ones of its row) the target may see
    tokens: torch.Tensor  # [R, T] global token ids of the target IDs
    anchor: torch.Tensor | None = None  # [R, latent] anchor latent of each target's content prior (models trained with one)
    anchor_present: torch.Tensor | None = None  # [R] bool: targets with an anchor


class CrossContext(NamedTuple):
    """How decoder rows reach the encoder memory: per-layer keys/values, and the per-head attention bias."""

    key_values: list[tuple[torch.Tensor, torch.Tensor]]  # per decoder layer, ([B, heads, S, head_dim], same)
    bias: torch.Tensor  # [B, heads, 1, S] (rows are request-major beams) or [R, heads, S] (one per decoder row)
    row: torch.Tensor | None  # None: decoder rows are request-major groups of equal size; else [R] encoder row of each
    slot: torch.Tensor | None  # [R] index of the decoder row among those of its encoder row
    slots: int  # most decoder rows of one encoder row


class Dropout(nn.Module):
    """Inverted dropout with the same law as ``nn.Dropout``, whose mask on CPU comes from 31-bit random integers.

    Torch's CPU Bernoulli sampler costs more than a dense product of these sizes (about 12 ns per element here); one
    ``random_`` integer per element and a comparison cost a fraction of that. Elsewhere (GPU) it is ``F.dropout``.
    """

    RANDOM_BITS = 31  # int32.random_() draws uniformly from [0, 2**31)

    def __init__(self, p: float):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=True)
        draws = torch.empty(x.shape, dtype=torch.int32).random_()
        keep = (draws >= round(self.p * 2**self.RANDOM_BITS)).to(x.dtype).mul_(1 / (1 - self.p))
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Attention(nn.Module):
    def __init__(self, d_model: int, heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim, self.dropout = heads, head_dim, dropout
        self.query = nn.Linear(d_model, heads * head_dim, bias=False)
        self.key_value = nn.Linear(d_model, 2 * heads * head_dim, bias=False)
        self.out = nn.Linear(heads * head_dim, d_model, bias=False)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def _attend(self, query, key, value, mask, causal: bool = False) -> torch.Tensor:
        dropout = self.dropout if self.training else 0.0
        return F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout, is_causal=causal)

    def key_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values [B, heads, S, head_dim] of ``memory`` (computed once per encoder row)."""
        key, value = self.key_value(memory).chunk(2, dim=-1)
        return self._split(key), self._split(value)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """Self-attention of ``x`` [B, L, d]; ``mask`` bool [B, 1, L, L] (True = may attend) or ``causal``."""
        key, value = self.key_values(x)
        attended = self._attend(self._split(self.query(x)), key, value, mask, causal and mask is None)
        return self.out(attended.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1))

    def step(self, x: torch.Tensor, cache: torch.Tensor) -> torch.Tensor:
        """Self-attention of one new position ``x [R, d]`` to itself and the earlier ones (inference).

        ``cache [t + 1, R, 2 * heads * head_dim]`` holds the keys and values of the earlier positions in rows ``:t``;
        this position's are written to row ``t``. A handful of positions: scores by products and sums, one op for all heads.
        """
        torch.matmul(x, self.key_value.weight.t(), out=cache[-1])
        key_value = cache.unflatten(2, (2, self.heads, self.head_dim))  # [t + 1, R, 2, heads, head_dim]
        query = self.query(x).view(len(x), self.heads, self.head_dim)
        weights = (key_value[:, :, 0] * query).sum(-1).mul_(self.head_dim**-0.5).softmax(dim=0)  # [t + 1, R, heads]
        return self.out((key_value[:, :, 1] * weights[..., None]).sum(0).flatten(1))

    def cross_step(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """Cross-attention of one new position ``x [R, d]`` (request-major rows, ``R / B`` per request) to its request's
        ``keys [B, heads, head_dim, S]`` (transposed and scaled, see :meth:`SemanticIdTransformer.step_key_values`),
        ``values [B, heads, S, head_dim]`` with ``bias [B, heads, 1, S]`` (inference)."""
        batch = len(keys)
        query = self.query(x).view(batch, -1, self.heads, self.head_dim).transpose(1, 2)  # [B, heads, R / B, head_dim]
        weights = torch.matmul(query, keys).add_(bias).softmax(dim=-1)
        return self.out(torch.matmul(weights, values).transpose(1, 2).reshape(len(x), -1))

    def cross(self, x: torch.Tensor, key_value: tuple[torch.Tensor, torch.Tensor], context: CrossContext) -> torch.Tensor:
        """Cross-attention of decoder rows ``x`` [R, L, d] to their encoder rows' keys/values.

        The decoder rows of one encoder row are laid side by side as one query sequence of that encoder row,
        so keys and values are never copied per decoder row.
        """
        key, value = key_value
        rows, length, width = x.shape[0], x.shape[1], self.heads * self.head_dim
        batch = key.shape[0]
        query = self.query(x)
        if context.row is None:  # request-major groups of equal size (beams)
            grouped, bias = query.reshape(batch, -1, width), context.bias
        else:
            grouped = query.new_zeros(batch, context.slots, length, width)
            grouped[context.row, context.slot] = query
            grouped = grouped.view(batch, context.slots * length, width)
            bias = context.bias.new_zeros(batch, context.slots, self.heads, key.shape[2])
            bias[context.row, context.slot] = context.bias
            bias = bias[:, :, None].expand(-1, -1, length, -1, -1).reshape(batch, -1, self.heads, key.shape[2]).transpose(1, 2)
        attended = self._attend(self._split(grouped), key, value, bias).transpose(1, 2).reshape(batch, -1, length, width)
        if context.row is None:
            attended = attended.reshape(rows, length, width)
        else:
            attended = attended[context.row, context.slot]
        return self.out(attended)


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
            nn.Linear(d, config.feed_forward), nn.GELU(), Dropout(config.dropout), nn.Linear(config.feed_forward, d)
        )
        self.dropout = Dropout(config.dropout)

    def forward(self, x, self_mask=None, causal=False, key_value=None, context=None):
        x = x + self.dropout(self.self_attention(self.self_norm(x), self_mask, causal))
        if self.cross_attention is not None:
            x = x + self.dropout(self.cross_attention.cross(self.cross_norm(x), key_value, context))
        return x + self.dropout(self.feed_forward(self.ff_norm(x)))

    def step(self, x: torch.Tensor, cache: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` of one new decoder position ``x [R, d]`` given the cached earlier ones (inference: no dropout)."""
        x = x + self.self_attention.step(self.self_norm(x), cache)
        x = x + self.cross_attention.cross_step(self.cross_norm(x), keys, values, bias)
        return x + self.feed_forward(self.ff_norm(x))


class SemanticIdTransformer(nn.Module):
    def __init__(self, config: DecoderConfig, layout: TokenLayout, query_dim: int):
        super().__init__()
        self.config, self.layout = config, layout
        d = config.d_model
        self.embedding = nn.Embedding(layout.size, d, padding_idx=TokenLayout.PAD)
        self.piece_start = 1 + (1 if layout.user_buckets else 0) + config.query_tokens  # task, [user], query tokens, then pieces
        self.fixed_positions = self.piece_start + config.query_pieces
        self.encoder_positions = nn.Embedding(self.fixed_positions + config.max_history, d)
        self.decoder_positions = nn.Embedding(layout.id_length, d)
        self.recency_bias = nn.Embedding(config.max_history + 1, config.heads)  # 0: task/user/query tokens; r: r items back
        nn.init.zeros_(self.recency_bias.weight)
        self.query_projection = nn.Linear(query_dim, config.query_tokens * d)
        self.content_projection = nn.Linear(query_dim, d, bias=False) if config.history_content else None  # same sentence encoder
        self.piece_embedding = None
        if config.query_pieces:
            if layout.query_piece_vocab <= 0:
                raise ValueError("a model that reads query word pieces needs the layout's query_piece_vocab")
            self.piece_embedding = nn.Embedding(layout.query_piece_vocab, d, padding_idx=0)
        self.piece_projection = None
        if config.query_pieces and config.query_piece_init == "encoder":  # a fixed table (set by training), read through a projection
            self.piece_embedding.weight.requires_grad_(False)
            self.piece_projection = nn.Linear(d, d)
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

    # ----- encoder
    def encode(self, batch: EncoderInput) -> Memory:
        """Causal encoder over [task, user, query tokens, history items]."""
        size, device = len(batch.task), batch.task.device
        parts = [self.embedding(batch.task)[:, None]]
        present_parts = [torch.ones(size, 1, dtype=torch.bool, device=device)]
        if self.layout.user_buckets:
            user = batch.user if batch.user is not None else torch.zeros(size, dtype=torch.long, device=device)
            parts.append(self.embedding(user)[:, None])
            present_parts.append((user != TokenLayout.PAD)[:, None])
        parts.append(self.query_projection(batch.query).view(size, self.config.query_tokens, -1))
        present_parts.append(batch.has_query[:, None].expand(-1, self.config.query_tokens))
        fixed_position = [torch.arange(self.piece_start, device=device)]
        if self.piece_embedding is not None:
            pieces = batch.query_pieces
            if pieces is None:  # fine for recommendation rows only
                if bool(batch.has_query.any()):
                    raise ValueError("this model reads the query's word pieces: pass EncoderInput.query_pieces")
                pieces = torch.zeros(size, 0, dtype=torch.long, device=device)
            if pieces.shape[1] > self.config.query_pieces:
                raise ValueError(f"{pieces.shape[1]} query pieces given; the model reads at most {self.config.query_pieces}")
            piece_states = self.piece_embedding(pieces)
            parts.append(piece_states if self.piece_projection is None else self.piece_projection(piece_states))
            present_parts.append(pieces != 0)
            fixed_position.append(self.piece_start + torch.arange(pieces.shape[1], device=device))
        history_present = batch.history[:, :, 0] != TokenLayout.PAD
        history = self.embedding(batch.history).sum(2)
        if self.content_projection is not None:
            if batch.history_content is None:
                raise ValueError("this model reads the history items' content embeddings: pass EncoderInput.history_content")
            history = history + self.content_projection(batch.history_content)
        parts.append(history)
        present_parts.append(history_present)
        states, present = torch.cat(parts, dim=1), torch.cat(present_parts, dim=1)

        item_index = history_present.long().cumsum(1) - 1  # left padding: the oldest present item is 0
        fixed = torch.cat(fixed_position)  # pieces trimmed to the batch's longest query keep their positions
        history_position = self.fixed_positions + item_index.clamp_min(0)
        position = torch.cat([fixed.expand(size, -1), history_position], dim=1)
        states = states + self.encoder_positions(position)
        item_index = torch.cat([torch.full((size, len(fixed)), -1, device=device), item_index.masked_fill(~history_present, -1)], dim=1)

        length = states.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        mask = (causal[None] & present[:, None, :])[:, None]  # [B, 1, S, S]; every position sees the task token
        for block in self.encoder:
            states = block(states, mask)
        return Memory(self.encoder_norm(states), present, item_index, history_present.sum(1))

    def cross_bias(self, memory: Memory, row: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """Per-head bias [R, heads, S] of decoder rows that read encoder row ``row`` after ``visible`` history items."""
        item_index, present = memory.item_index[row], memory.present[row]
        fixed = item_index < 0
        back = visible[:, None] - item_index  # 1 for the most recent visible item
        allowed = present & (fixed | (back >= 1))
        bucket = torch.where(fixed, 0, back.clamp(1, self.config.max_history))
        bias = self.recency_bias(bucket).masked_fill(~allowed[..., None], float("-inf"))
        return bias.transpose(1, 2)

    def cross_key_values(self, memory: Memory) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per decoder layer, the cross-attention keys and values of the encoder states (once per encoder row)."""
        return [block.cross_attention.key_values(memory.states) for block in self.decoder]

    def request_context(self, memory: Memory) -> CrossContext:
        """Cross-attention context for decoding: each request's rows (its beams) see its whole history."""
        rows = torch.arange(len(memory.states), device=memory.states.device)
        bias = self.cross_bias(memory, rows, memory.history_length)[:, :, None]
        return CrossContext(self.cross_key_values(memory), bias, None, None, 1)

    def target_context(self, memory: Memory, row: torch.Tensor, visible: torch.Tensor) -> CrossContext:
        """Cross-attention context for training targets (any number per encoder row)."""
        order = torch.argsort(row, stable=True)
        counts = torch.bincount(row, minlength=len(memory.states))
        first = counts.cumsum(0) - counts
        slot = torch.empty_like(row)
        slot[order] = torch.arange(len(row), device=row.device) - first[row[order]]
        slots = int(counts.max()) if len(row) else 1
        return CrossContext(self.cross_key_values(memory), self.cross_bias(memory, row, visible), row, slot, slots)

    # ----- decoder
    def decode(self, prefix: torch.Tensor, context: CrossContext) -> torch.Tensor:
        """Logits [R, t+1, V] for the next token after each position of ``[START] + prefix``."""
        start = torch.full((len(prefix), 1), TokenLayout.START, dtype=torch.long, device=prefix.device)
        tokens = torch.cat([start, prefix], dim=1)
        states = self.embedding(tokens) + self.decoder_positions.weight[: tokens.shape[1]]
        for layer, block in enumerate(self.decoder):
            states = block(states, causal=True, key_value=context.key_values[layer], context=context)
        return self.output(self.decoder_norm(states))

    def step_key_values(self, context: CrossContext) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per decoder layer, the cross-attention keys as ``[B, heads, head_dim, S]`` times the attention scale and the
        values ``[B, heads, S, head_dim]``, contiguous: the layout :meth:`decode_step` multiplies with (once per request)."""
        scale = self.config.head_dim**-0.5
        return [((key * scale).transpose(2, 3).contiguous(), value.contiguous()) for key, value in context.key_values]

    def decode_step(
        self,
        tokens: torch.Tensor,
        cache: list[torch.Tensor] | None,
        parents: torch.Tensor | None,
        key_values: list[tuple[torch.Tensor, torch.Tensor]],
        bias: torch.Tensor,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Incremental :meth:`decode` (inference): the final states [R, d] after one more position, and the grown cache.

        ``tokens [R]`` (request-major, equally many per request) are the inputs of position ``t`` (START at ``t = 0``);
        ``cache`` holds, per layer, the self-attention keys and values ``[t, R', 2 * heads * head_dim]`` of the positions
        before (None at ``t = 0``), and row ``r`` extends row ``parents[r]`` of it. ``key_values``: :meth:`step_key_values`;
        ``bias [B, heads, 1, S]``: the request context's cross-attention bias.
        """
        position, width = 0 if cache is None else len(cache[0]), 2 * self.config.heads * self.config.head_dim
        grown = []
        states = self.embedding(tokens) + self.decoder_positions.weight[position]
        for layer, block in enumerate(self.decoder):
            grown.append(states.new_empty(position + 1, len(tokens), width))
            if cache is not None:
                torch.index_select(cache[layer], 1, parents, out=grown[layer][:position])
            states = block.step(states, grown[layer], *key_values[layer], bias)
        return self.decoder_norm(states), grown

    def next_log_probs(self, states: torch.Tensor, level: int) -> torch.Tensor:
        """Log-probabilities [R, V_level] of level ``level``'s tokens (level-local numbering) from final decoder states [R, d]."""
        offset, size = self.layout.level_offsets[level], self.layout.level_sizes[level]
        return F.linear(states, self.output.weight[offset : offset + size]).log_softmax(dim=-1)

    def target_losses(self, batch: EncoderInput, targets: Targets, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Cross-entropy [R] of each target ID (mean over its tokens), each position restricted to its level's tokens.

        ``prior [R, levels, K]`` (weighted content log-prior of the residual levels, level-local codes) is added to those logits.
        """
        memory = self.encode(batch)
        logits = self.decode(targets.tokens[:, :-1], self.target_context(memory, targets.row, targets.visible))
        if prior is not None:
            additive = torch.zeros_like(logits)
            for level in range(prior.shape[1]):
                offset = self.layout.level_offsets[level]
                additive[:, level, offset : offset + prior.shape[2]] = prior[:, level]
            logits = logits + additive
        logits = logits.masked_fill(~self.level_mask, float("-inf"))
        losses = F.cross_entropy(logits.flatten(0, 1), targets.tokens.flatten(), reduction="none")
        return losses.view(targets.tokens.shape).mean(1)

    def forward(self, batch: EncoderInput, targets: Targets, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross-entropy over all targets of the batch."""
        return self.target_losses(batch, targets, prior).mean()

    def level_log_probs(self, prefix: torch.Tensor, context: CrossContext) -> torch.Tensor:
        """Log-probabilities [R, V_t] of the next ID token (level t = prefix length), in level-local numbering."""
        level = prefix.shape[1]
        offset, size = self.layout.level_offsets[level], self.layout.level_sizes[level]
        logits = self.decode(prefix, context)[:, -1, offset : offset + size]
        return logits.log_softmax(dim=-1)
