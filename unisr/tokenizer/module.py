"""The tokenizer's Lightning training module: reconstruction, quantization and the two contrastive signals."""

from __future__ import annotations

import lightning as L
import torch
import torch.nn.functional as F

from unisr.tokenizer.config import TokenizerConfig
from unisr.tokenizer.model import RQVAE
from unisr.tokenizer.signals import PairSet


def info_nce(left: torch.Tensor, right: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric in-batch contrastive loss: row i of ``left`` matches row i of ``right``."""
    logits = F.normalize(left, dim=1) @ F.normalize(right, dim=1).T / temperature
    labels = torch.arange(len(left), device=left.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


class TokenizerModule(L.LightningModule):
    """Trains the RQ-VAE (or, with ``quantize=False``, the encoder for RQ-KMeans) on items and signals.

    Batches are index tensors of training items; signal pairs are drawn per step from a generator
    seeded by (seed, step, rank), so runs are reproducible and DDP ranks draw different pairs.
    """

    def __init__(self, config: TokenizerConfig, items: torch.Tensor, queries: torch.Tensor, search: PairSet, rec: PairSet, quantize: bool):
        super().__init__()
        self.config = config
        self.quantize = quantize
        self.model = RQVAE(items.shape[1], config)
        self.model.mean.copy_(items.mean(0))
        self.model.std.copy_(items.std(0).clamp_min(1e-6))
        self.register_buffer("items", items, persistent=False)
        self.register_buffer("queries", queries, persistent=False)
        self.search = self._pair_tensors(search) if config.uses_search and len(search) else None
        self.rec = self._pair_tensors(rec) if config.uses_rec and len(rec) else None

    @staticmethod
    def _pair_tensors(pairs: PairSet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        weight = torch.from_numpy(pairs.weight).double()
        return torch.from_numpy(pairs.left), torch.from_numpy(pairs.right), weight / weight.sum()

    def _generator(self) -> torch.Generator:
        generator = torch.Generator()
        generator.manual_seed(self.config.seed * 1_000_003 + self.global_step * max(1, self.trainer.world_size) + self.global_rank)
        return generator

    def _draw(self, pairs, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        left, right, probability = pairs
        picked = torch.multinomial(probability, count, replacement=True, generator=generator)
        return left[picked], right[picked]

    def _item_latent(self, latent: torch.Tensor) -> torch.Tensor:
        if self.quantize and self.config.signal_latent == "post":
            return self.model.quantizer(latent).quantized
        return latent

    def on_fit_start(self) -> None:
        if self.quantize and not bool(self.model.quantizer.initialised):
            self._kmeans_init()

    @torch.no_grad()
    def _kmeans_init(self) -> None:
        generator = torch.Generator().manual_seed(self.config.seed)
        count = min(len(self.items), self.config.kmeans_init_points)
        rows = torch.randperm(len(self.items), generator=generator)[:count]
        self.model.quantizer.initialise_with_kmeans(self.model.encode(self.items[rows]), self.config.seed)

    def training_step(self, batch: torch.Tensor, batch_index: int) -> torch.Tensor:
        config = self.config
        embeddings = self.items[batch]
        latent = self.model.encode(embeddings)
        if self.quantize:
            quantized = self.model.quantizer(latent)
            reconstruction = F.mse_loss(self.model.decoder(quantized.quantized), self.model.standardise(embeddings))
            quantization = quantized.codebook_loss + config.beta * quantized.commitment_loss
        else:
            reconstruction = F.mse_loss(self.model.decoder(latent), self.model.standardise(embeddings))
            quantization = latent.new_zeros(())
        loss = reconstruction + quantization
        generator = self._generator()
        logs = {"train/reconstruction": reconstruction, "train/quantization": quantization}
        if self.search is not None:
            query_rows, item_rows = self._draw(self.search, config.batch_size, generator)
            search_loss = info_nce(
                self.model.encode(self.queries[query_rows]), self._item_latent(self.model.encode(self.items[item_rows])), config.temperature
            )
            loss = loss + config.lambda_search * search_loss
            logs["train/search"] = search_loss
        if self.rec is not None:
            left_rows, right_rows = self._draw(self.rec, config.batch_size, generator)
            rec_loss = info_nce(
                self._item_latent(self.model.encode(self.items[left_rows])),
                self._item_latent(self.model.encode(self.items[right_rows])),
                config.temperature,
            )
            loss = loss + config.lambda_rec * rec_loss
            logs["train/rec"] = rec_loss
        logs["train/loss"] = loss
        self.log_dict(logs, prog_bar=False, on_step=False, on_epoch=True, batch_size=len(batch), sync_dist=True)
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(batch), logger=False)
        return loss

    def on_train_epoch_end(self) -> None:
        if not self.quantize or self.config.dead_code_threshold <= 0:
            return
        generator = torch.Generator().manual_seed(self.config.seed * 7919 + self.current_epoch)
        with torch.no_grad():
            reseeded = self.model.quantizer.reseed_dead_codes(self.model.encode(self.items), self.config.dead_code_threshold, generator)
        self.log("train/reseeded_codes", float(reseeded), on_step=False, on_epoch=True, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.config.learning_rate, weight_decay=self.config.weight_decay)
