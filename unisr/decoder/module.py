"""Lightning module of the decoder: mixed-task batches, validation Recall@K by constrained beam search."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Timer

from unisr.decoder.config import DecoderConfig
from unisr.decoder.examples import INDEX, REC, SEARCH, Examples
from unisr.decoder.generate import Guide, generate
from unisr.decoder.guidance import CodePrior
from unisr.decoder.inputs import InputBuilder
from unisr.decoder.model import SemanticIdTransformer, TokenLayout
from unisr.decoder.trie import PrefixTrie


class DecoderModule(L.LightningModule):
    def __init__(
        self,
        config: DecoderConfig,
        layout: TokenLayout,
        inputs: InputBuilder,
        query_dim: int,
        trie: PrefixTrie,
        train: Examples,
        valid: dict[str, Examples],
        prior: CodePrior | None = None,
    ):
        super().__init__()
        self.config = config
        self.model = SemanticIdTransformer(config, layout, query_dim)
        self.inputs = inputs
        self.trie = trie
        self.train_examples = train
        self.valid = valid
        self.prior = prior  # the tokenizer's content prior, for ``guidance_training`` > 0 (else None)
        self._hits: dict[str, list[torch.Tensor]] = {}
        self._seen = 0
        self._started = 0.0

    def _prior_on(self, device: torch.device) -> CodePrior:
        if self.prior.codebooks.device != device:
            self.prior = self.prior.to(device)
        return self.prior

    def training_step(self, batch, batch_index):
        encoder_input, targets, _ = batch
        prior = None
        if self.prior is not None and self.config.guidance_training > 0:
            levels = len(self.prior.codebooks)
            offsets = torch.tensor(self.model.layout.level_offsets[:levels], device=targets.tokens.device)
            codes = targets.tokens[:, :levels] - offsets
            prior = self.config.guidance_training * self._prior_on(codes.device).teacher_forced(
                codes, targets.anchor, targets.anchor_present
            )
        loss = self.model(encoder_input, targets, prior)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(targets.row), sync_dist=True)
        self.log("train/learning_rate", self.lr_schedulers().get_last_lr()[0], on_step=True, on_epoch=False)
        self._seen += len(targets.row)
        return loss

    def on_train_epoch_start(self) -> None:
        self._seen, self._started = 0, time.perf_counter()

    def on_train_epoch_end(self) -> None:
        elapsed = time.perf_counter() - self._started
        if elapsed > 0:
            self.log("train/targets_per_second", self._seen / elapsed, on_epoch=True, sync_dist=True)

    def validation_step(self, batch, batch_index, dataloader_idx: int = 0):
        task_name, (encoder_input, targets, target_items) = batch
        guide = None
        if self.prior is not None and self.config.guidance_training > 0:  # the model's distribution includes its prior
            size = len(encoder_input.task)
            anchors = targets.anchor.new_zeros(size, targets.anchor.shape[1]).index_copy(0, targets.row, targets.anchor)
            present = targets.anchor_present.new_zeros(size).index_copy(0, targets.row, targets.anchor_present)
            guide = Guide(self._prior_on(anchors.device), anchors, present, 0.0, self.config.guidance_training)
        trie = self.trie.to(target_items.device)
        with torch.autocast(target_items.device.type, enabled=False):  # validation decodes as inference does: float32
            result = generate(self.model, encoder_input, trie, self.config.beam_size, self.config.top_k, guide=guide)
        hits = (result.items[targets.row] == target_items[:, None]).any(dim=1).float()  # Recall@K over (request, relevant item)
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
        """The epoch's batches (seeded by the epoch: every rank builds the same list); under DDP, Lightning's
        DistributedSampler gives each rank every ``world_size``-th of them (tests/test_decoder_ddp.py)."""
        batches = training_batches(self.train_examples, self.config, self.config.seed * 100_003 + self.current_epoch)
        return torch.utils.data.DataLoader(ExampleBatches(self.inputs, self.train_examples, batches), batch_size=None, shuffle=False)

    def val_dataloader(self):
        loaders = []
        for task_name, examples in self.valid.items():
            rows = np.arange(len(examples))
            batches = [rows[start : start + self.config.batch_size] for start in range(0, len(rows), self.config.batch_size)]
            loaders.append(torch.utils.data.DataLoader(ExampleBatches(self.inputs, examples, batches, task_name), batch_size=None))
        return loaders

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.config.learning_rate, weight_decay=self.config.weight_decay)
        schedule = functools.partial(
            learning_rate_factor,
            warmup=self.config.warmup_steps,
            total=int(self.trainer.estimated_stepping_batches),
            kind=self.config.lr_schedule,
            budget_used=self.time_budget_used,
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), "interval": "step"},
        }

    def time_budget_used(self) -> float:
        """Share of the wall-time budget (``max_minutes``) spent training so far, the same on every process; 0 without one."""
        timer = next((callback for callback in self.trainer.callbacks if isinstance(callback, Timer)), None)
        if timer is None:
            return 0.0
        elapsed, remaining = timer.time_elapsed("train"), timer.time_remaining("train")
        share = elapsed / (elapsed + remaining) if remaining is not None and elapsed + remaining > 0 else 0.0
        return float(self.trainer.strategy.broadcast(share)) if self.trainer.world_size > 1 else share


class ExampleBatches(torch.utils.data.Dataset):
    """Map-style dataset whose items are whole batches (collation is vectorized, not per example)."""

    def __init__(self, inputs: InputBuilder, examples: Examples, batch_rows: list[np.ndarray], task_name: str | None = None):
        self.inputs, self.examples, self.batch_rows, self.task_name = inputs, examples, batch_rows, task_name

    def __len__(self) -> int:
        return len(self.batch_rows)

    def __getitem__(self, index: int):
        batch = self.inputs.batch(self.examples, self.batch_rows[index])
        return batch if self.task_name is None else (self.task_name, batch)


def training_batches(examples: Examples, config: DecoderConfig, epoch_seed: int) -> list[np.ndarray]:
    """Shuffled batches of example rows holding about ``batch_size`` targets each.

    With both tasks, search rows are drawn (with replacement where needed) until their targets make up
    ``search_share`` of the epoch's targets; indexing rows are drawn on top to make up ``index_share`` of
    all targets; ``examples_per_epoch`` (targets) resamples the whole epoch.
    """
    rng = np.random.default_rng(epoch_seed)
    counts = examples.target_count
    rec_rows = np.flatnonzero(examples.task == REC)
    search_rows = np.flatnonzero(examples.task == SEARCH)
    if len(rec_rows) and len(search_rows) and 0 < config.search_share < 1:
        wanted = int(round(counts[rec_rows].sum() * config.search_share / (1 - config.search_share)))
        search_rows = _draw_targets(rng, search_rows, counts, wanted)
    rows = np.concatenate([rec_rows, search_rows])
    index_rows = np.flatnonzero(examples.task == INDEX)
    if len(index_rows) and 0 < config.index_share < 1:
        wanted = int(round(counts[rows].sum() * config.index_share / (1 - config.index_share))) if len(rows) else len(index_rows)
        rows = np.concatenate([rows, _draw_targets(rng, index_rows, counts, wanted)])
    rows = rng.permutation(rows)
    if config.examples_per_epoch > 0:
        rows = _draw_targets(rng, rows, counts, config.examples_per_epoch)
    before = np.cumsum(counts[rows]) - counts[rows]
    cuts = np.flatnonzero(np.diff(before // config.batch_size)) + 1
    return [part for part in np.split(rows, cuts) if len(part)]


def _draw_targets(rng: np.random.Generator, rows: np.ndarray, counts: np.ndarray, wanted: int) -> np.ndarray:
    """Rows drawn in shuffled passes (a row repeats only after all were drawn) until their targets reach ``wanted``."""
    if wanted <= 0 or not len(rows):
        return rows[:0]
    per_pass = int(counts[rows].sum())
    drawn = np.concatenate([rng.permutation(rows) for _ in range(wanted // per_pass + 1)])
    return drawn[: int(np.searchsorted(np.cumsum(counts[drawn]), wanted)) + 1]


def learning_rate_factor(step: int, warmup: int, total: int, kind: str, budget_used: Callable[[], float] | None = None) -> float:
    """Multiplier of the peak learning rate at optimizer step ``step`` (0-based): linear warm-up over ``warmup``
    steps, then inverse square root decay (TIGER) or a cosine that reaches 0 at step ``total`` or when
    ``budget_used()`` (the share of a wall-time budget spent) reaches 1, whichever comes first."""
    step, warmup = step + 1, max(1, warmup)
    if step < warmup:
        return step / warmup
    if kind == "cosine":
        progress = min(1.0, max((step - warmup) / max(1, total - warmup), budget_used() if budget_used is not None else 0.0))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return math.sqrt(warmup / step)
