"""Model inputs from index arrays: item rows → ID tokens, query rows → sentence vectors (no training code)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from unisr.data.dataset import PreparedDataset
from unisr.decoder.examples import REC, Examples
from unisr.decoder.model import EncoderInput, Targets, TokenLayout


def item_vectors(embeddings_items: np.ndarray, dataset: PreparedDataset, item_ids: list[str]) -> torch.Tensor:
    """Frozen content embeddings [len(item_ids), E] in the order of ``item_ids`` (rows of the ID table)."""
    positions = np.array([dataset.catalog.position(item) for item in item_ids], dtype=np.int64)
    return torch.from_numpy(np.ascontiguousarray(embeddings_items[positions])).float()


class AnchorLatents(NamedTuple):
    """Tokenizer latents of the anchors of the content prior: every item, and every query row (``query_vectors`` order)."""

    items: torch.Tensor  # [n_items, latent]
    queries: torch.Tensor  # [n_query_rows, latent]


def row_anchors(examples: Examples, latents: AnchorLatents) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor latent and presence of each row: its query (search rows) or its most recent history item (rec rows)."""
    last_item = torch.from_numpy(examples.history[:, -1]) if examples.history.shape[1] else torch.full((len(examples),), -1)
    query = torch.from_numpy(examples.query)
    is_search = torch.from_numpy(examples.task != REC)
    anchors = torch.where(is_search[:, None], latents.queries[query.clamp_min(0)], latents.items[last_item.clamp_min(0)])
    present = torch.where(is_search, query >= 0, last_item >= 0)
    return anchors, present


class InputBuilder:
    """Turns example index arrays into encoder inputs and targets."""

    def __init__(
        self,
        layout: TokenLayout,
        id_tokens: torch.Tensor,
        query_vectors: torch.Tensor,
        item_vectors: torch.Tensor | None = None,
        anchor_latents: AnchorLatents | None = None,
        query_pieces: torch.Tensor | None = None,
    ):
        self.layout = layout
        self.id_tokens = id_tokens  # [n_items, T] global token ids
        self.query_vectors = query_vectors  # [n_query_texts, E]
        self.item_vectors = item_vectors  # [n_items, E] frozen content embeddings, for models that read them (else None)
        self.anchor_latents = anchor_latents  # for models trained with the content prior (else None)
        self.query_pieces = query_pieces  # [n_query_texts, P] word-piece ids, for models that read them (else None)

    def target_anchors(self, part: Examples) -> tuple[torch.Tensor, torch.Tensor]:
        """Anchor latent and presence of every target: its row's query (search, index) or the most recent item it may see (rec)."""
        rows = part.target_row()
        present_items = (part.history >= 0).sum(axis=1)
        column = part.history.shape[1] - present_items[rows] + part.target_visible - 1
        last_seen = np.where(part.target_visible > 0, part.history[rows, np.clip(column, 0, None)], -1)
        query = part.query[rows]
        is_rec = part.task[rows] == REC
        item, query = torch.from_numpy(last_seen), torch.from_numpy(query)
        latents = self.anchor_latents
        anchors = torch.where(torch.from_numpy(is_rec)[:, None], latents.items[item.clamp_min(0)], latents.queries[query.clamp_min(0)])
        present = torch.where(torch.from_numpy(is_rec), item >= 0, query >= 0)
        return anchors, present

    def encoder_input(
        self,
        task: torch.Tensor,
        history: torch.Tensor,
        query: torch.Tensor,
        query_vectors: torch.Tensor | None = None,
        user: torch.Tensor | None = None,
        query_pieces: torch.Tensor | None = None,
    ) -> EncoderInput:
        """Inputs from item rows (-1 = none, left padding) and query rows (-1 = none) into ``query_vectors`` and
        ``query_pieces`` (default: the dataset's)."""
        present = history >= 0
        used = present.any(dim=0).nonzero()
        first = int(used.min()) if len(used) else history.shape[1]
        history, present = history[:, first:], present[:, first:]  # dynamic padding: drop columns empty in the whole batch
        tokens = self.id_tokens[history.clamp_min(0)] * present[..., None]  # PAD = 0 where absent
        has_query = query >= 0
        table = self.query_vectors if query_vectors is None else query_vectors
        vectors = table[query.clamp_min(0)] * has_query[:, None] if len(table) else torch.zeros(len(task), self.query_vectors.shape[1])
        task_tokens = torch.where(task == REC, TokenLayout.TASK["rec"], TokenLayout.TASK["search"])  # index rows read as search
        user_tokens = None
        if user is not None and self.layout.user_buckets:
            user_tokens = torch.where(user >= 0, user + self.layout.user_offset, TokenLayout.PAD)
        content = None
        if self.item_vectors is not None:
            content = self.item_vectors[history.clamp_min(0)] * present[..., None]
        pieces = self.query_pieces if query_pieces is None else query_pieces
        if pieces is not None:
            pieces = pieces[query.clamp_min(0)] * has_query[:, None] if len(pieces) else pieces.new_zeros(len(task), 0)
            used = (pieces != 0).any(dim=0).nonzero()
            pieces = pieces[:, : int(used.max()) + 1 if len(used) else 0]  # dynamic padding: the batch's longest query
        return EncoderInput(task_tokens, tokens, vectors, has_query, user_tokens, content, pieces)

    def batch(self, examples: Examples, rows: np.ndarray) -> tuple[EncoderInput, Targets, torch.Tensor]:
        """Encoder inputs of ``rows``, their targets, and each target's item row."""
        part = examples.subset(rows)
        encoder_input = self.encoder_input(
            torch.from_numpy(part.task), torch.from_numpy(part.history), torch.from_numpy(part.query), user=torch.from_numpy(part.user)
        )
        items = torch.from_numpy(part.target_item)
        anchor, present = self.target_anchors(part) if self.anchor_latents is not None else (None, None)
        targets = Targets(
            torch.from_numpy(part.target_row()), torch.from_numpy(part.target_visible), self.id_tokens[items], anchor, present
        )
        return encoder_input, targets, items
