"""Lightning module of the decoder: mixed-task batches, validation Recall@K by constrained beam search."""

from __future__ import annotations

import math
import time

import lightning as L
import numpy as np
import torch

from unisr.decoder.beam import constrained_beam_search
from unisr.decoder.config import DecoderConfig
from unisr.decoder.examples import REC, SEARCH, Examples
from unisr.decoder.model import EncoderInput, SemanticIdTransformer, TokenLayout
from unisr.decoder.trie import PrefixTrie


class Tokens:
    """Turns example index arrays into model inputs: item rows → ID tokens, query rows → vectors."""

    def __init__(self, layout: TokenLayout, id_tokens: torch.Tensor, query_vectors: torch.Tensor):
        self.layout = layout
        self.id_tokens = id_tokens  # [n_items, T] global token ids
        self.query_vectors = query_vectors  # [n_query_texts, E]

    def encoder_input(
        self,
        task: torch.Tensor,
        history: torch.Tensor,
        query: torch.Tensor,
        query_vectors: torch.Tensor | None = None,
        user: torch.Tensor | None = None,
    ) -> EncoderInput:
        """Inputs from item rows (-1 = none) and query rows (-1 = none) into ``query_vectors`` (default: the dataset's)."""
        present = history >= 0
        used = present.any(dim=0).nonzero()
        first = int(used.min()) if len(used) else history.shape[1]
        history, present = history[:, first:], present[:, first:]  # dynamic padding: drop columns empty in the whole batch
        tokens = self.id_tokens[history.clamp_min(0)] * present[..., None]  # PAD = 0 where absent
        has_query = query >= 0
        table = self.query_vectors if query_vectors is None else query_vectors
        vectors = table[query.clamp_min(0)] * has_query[:, None] if len(table) else torch.zeros(len(task), self.query_vectors.shape[1])
        task_tokens = torch.where(task == SEARCH, TokenLayout.TASK["search"], TokenLayout.TASK["rec"])
        user_tokens = None
        if user is not None and self.layout.user_buckets:
            user_tokens = torch.where(user >= 0, user + self.layout.user_offset, TokenLayout.PAD)
        return EncoderInput(task_tokens, tokens, vectors, has_query, user_tokens)

    def batch(self, examples: Examples, rows: np.ndarray) -> tuple[EncoderInput, torch.Tensor]:
        part = examples.subset(rows)
        encoder_input = self.encoder_input(
            torch.from_numpy(part.task), torch.from_numpy(part.history), torch.from_numpy(part.query), user=torch.from_numpy(part.user)
        )
        return encoder_input, self.id_tokens[torch.from_numpy(part.target)]


def generate(
    model: SemanticIdTransformer, batch: EncoderInput, trie: PrefixTrie, beam_size: int, top_k: int, exclude: torch.Tensor | None = None
):
    """Constrained beam search for a batch of encoder inputs; returns the BeamResult (item rows of the trie)."""
    memory, memory_mask = model.encode(batch)
    cached = model.cross_key_values(memory)  # beams of a request share its encoder keys/values (request-major rows)
    offsets = torch.tensor(model.layout.level_offsets, device=memory.device)

    def score_step(prefix: torch.Tensor, batch_index: torch.Tensor) -> torch.Tensor:
        return model.level_log_probs(prefix + offsets[: prefix.shape[1]], None, memory_mask, cached)

    return constrained_beam_search(score_step, trie, len(batch.task), beam_size, top_k, exclude)


class DecoderModule(L.LightningModule):
    def __init__(
        self,
        config: DecoderConfig,
        layout: TokenLayout,
        tokens: Tokens,
        query_dim: int,
        trie: PrefixTrie,
        train: Examples,
        valid: dict[str, Examples],
    ):
        super().__init__()
        self.config = config
        self.model = SemanticIdTransformer(config, layout, query_dim)
        self.tokens = tokens
        self.trie = trie
        self.train_examples = train
        self.valid = valid
        self._hits: dict[str, list[torch.Tensor]] = {}
        self._seen = 0
        self._started = 0.0

    def training_step(self, batch, batch_index):
        encoder_input, target = batch
        loss = self.model(encoder_input, target)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(target), sync_dist=True)
        self._seen += len(target)
        return loss

    def on_train_epoch_start(self) -> None:
        self._seen, self._started = 0, time.perf_counter()

    def on_train_epoch_end(self) -> None:
        elapsed = time.perf_counter() - self._started
        if elapsed > 0:
            self.log("train/examples_per_second", self._seen / elapsed, on_epoch=True, sync_dist=True)

    def validation_step(self, batch, batch_index, dataloader_idx: int = 0):
        task_name, encoder_input, target_rows = batch
        result = generate(self.model, encoder_input, self.trie.to(target_rows.device), self.config.beam_size, self.config.top_k)
        hits = (result.items == target_rows[:, None]).any(dim=1).float()
        self._hits.setdefault(task_name, []).append(hits)

    def on_validation_epoch_end(self) -> None:
        recalls = []
        for task_name, parts in self._hits.items():
            recall = torch.cat(parts).mean()
            self.log(f"val/{task_name}_recall@{self.config.top_k}", recall, sync_dist=True)
            recalls.append(recall)
        self._hits = {}
        if recalls:
            self.log(f"val/recall@{self.config.top_k}", torch.stack(recalls).mean(), prog_bar=True, sync_dist=True)

    def train_dataloader(self):
        batches = training_batches(self.train_examples, self.config, self.config.seed * 100_003 + self.current_epoch)
        return torch.utils.data.DataLoader(ExampleBatches(self.tokens, self.train_examples, batches), batch_size=None, shuffle=False)

    def val_dataloader(self):
        loaders = []
        for task_name, examples in self.valid.items():
            rows = np.arange(len(examples))
            batches = [rows[start : start + self.config.batch_size] for start in range(0, len(rows), self.config.batch_size)]
            loaders.append(torch.utils.data.DataLoader(ExampleBatches(self.tokens, examples, batches, task_name), batch_size=None))
        return loaders

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config.learning_rate, weight_decay=self.config.weight_decay)
        warmup = max(1, self.config.warmup_steps)

        def schedule(step: int) -> float:  # linear warm-up, then inverse square root decay (as TIGER)
            step = step + 1
            return step / warmup if step < warmup else math.sqrt(warmup / step)

        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step"},
        }


class ExampleBatches(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches (collation is vectorized, not per example)."""

    def __init__(self, tokens: Tokens, examples: Examples, batch_rows: list[np.ndarray], task_name: str | None = None):
        self.tokens, self.examples, self.batch_rows, self.task_name = tokens, examples, batch_rows, task_name

    def __len__(self) -> int:
        return len(self.batch_rows)

    def __getitem__(self, index: int):
        encoder_input, target = self.tokens.batch(self.examples, self.batch_rows[index])
        if self.task_name is None:
            return encoder_input, target
        return self.task_name, encoder_input, torch.from_numpy(self.examples.target[self.batch_rows[index]])


def training_batches(examples: Examples, config: DecoderConfig, epoch_seed: int) -> list[np.ndarray]:
    """Shuffled batches of example rows; with both tasks, search examples are drawn to make up ``search_share``."""
    rng = np.random.default_rng(epoch_seed)
    rec_rows = np.flatnonzero(examples.task == REC)
    search_rows = np.flatnonzero(examples.task == SEARCH)
    if len(rec_rows) and len(search_rows) and 0 < config.search_share < 1:
        wanted = int(round(len(rec_rows) * config.search_share / (1 - config.search_share)))
        search_rows = rng.choice(search_rows, size=wanted, replace=wanted > len(search_rows))
    rows = rng.permutation(np.concatenate([rec_rows, search_rows]))
    if config.examples_per_epoch > 0:
        rows = rng.choice(rows, size=config.examples_per_epoch, replace=config.examples_per_epoch > len(rows))
    return [rows[start : start + config.batch_size] for start in range(0, len(rows), config.batch_size)]
