"""SASRec with cross-entropy over all items: the strong sequential baseline (Kang & McAuley 2018, full softmax).

Trained with Lightning on every prefix of the training parts (the last 20 items predict the next
one; causal attention), model selection by validation NDCG@10 (early stopping, and an optional
wall-time budget); ranks the whole catalog, leaving out the history.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch import nn

from unisr.config import check_types
from unisr.data.dataset import PreparedDataset
from unisr.errors import UnisrError
from unisr.evaluation.metrics import pad_rows, per_request_metrics, top_k_from_scores
from unisr.evaluation.requests import EvalRequest, rec_requests
from unisr.training import make_trainer, quiet_lightning
from unisr.validate import AT_LEAST_0, AT_LEAST_1, DROPOUT, POSITIVE, check_settings

PAD = 0  # item index 0 is padding; catalog row r is item index r + 1


SASREC_BOUNDS = {
    "hidden": AT_LEAST_1,
    "layers": AT_LEAST_1,
    "heads": AT_LEAST_1,
    "dropout": DROPOUT,
    "max_history": AT_LEAST_1,
    "learning_rate": POSITIVE,
    "batch_size": AT_LEAST_1,
    "epochs": AT_LEAST_1,
    "patience": AT_LEAST_0,
    "val_max_requests": AT_LEAST_1,
    "max_minutes": AT_LEAST_0,
}


@dataclass
class SASRecConfig:
    hidden: int = 64  # embedding and model width
    layers: int = 2  # transformer blocks
    heads: int = 2  # attention heads
    dropout: float = 0.2  # dropout
    max_history: int = 20  # most recent items read
    learning_rate: float = 1e-3  # Adam learning rate
    batch_size: int = 256  # sequences per step
    epochs: int = 50  # most passes over the training sequences
    patience: int = 5  # early stopping on validation NDCG@10
    val_max_requests: int = 5000  # validation users used for model selection (seeded subsample)
    max_minutes: float = 0  # stop training after this many minutes of wall time (0 = no limit); the best validated epoch is kept
    seed: int = 0  # seed
    progress: bool = False  # progress bar

    def __post_init__(self):
        check_types(self, "sasrec setting")
        check_settings("sasrec setting", vars(self), SASREC_BOUNDS)
        if self.hidden % self.heads:
            raise UnisrError(f"sasrec setting hidden={self.hidden} must be a multiple of heads={self.heads}")


class SASRec(nn.Module):
    def __init__(self, items: int, config: SASRecConfig):
        super().__init__()
        self.config = config
        self.item = nn.Embedding(items + 1, config.hidden, padding_idx=PAD)
        self.position = nn.Embedding(config.max_history, config.hidden)
        layer = nn.TransformerEncoderLayer(
            config.hidden, config.heads, config.hidden * 4, config.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.hidden)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        """States [B, L, H] of left-padded item indices [B, L] (causal)."""
        length = sequence.shape[1]
        states = self.dropout(self.item(sequence) + self.position.weight[-length:])
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=sequence.device), diagonal=1)
        blocked = causal | (sequence == PAD)[:, None, :]
        blocked = blocked & ~torch.eye(length, dtype=torch.bool, device=sequence.device)  # every position sees itself: no empty rows
        states = self.encoder(states, mask=blocked.repeat_interleave(self.config.heads, dim=0))
        return self.norm(states)

    def scores(self, sequence: torch.Tensor) -> torch.Tensor:
        """Scores [B, items] of every catalog item after the last position."""
        return self.forward(sequence)[:, -1] @ self.item.weight[1:].T


def _left_pad(rows: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    out = torch.zeros(len(rows), length, dtype=torch.long)
    for index, row in enumerate(rows):
        recent = list(row)[-length:]
        if recent:
            out[index, length - len(recent) :] = torch.tensor(recent) + 1
    return out


class SASRecModule(L.LightningModule):
    def __init__(self, model: SASRec, train: list[list[int]], valid: tuple[list[list[int]], np.ndarray], config: SASRecConfig):
        super().__init__()
        self.model, self.valid, self.config = model, valid, config
        # every prefix of a training part predicts its next item (as RecBole's SASRec), history cut to max_history
        histories = [sequence[max(0, end - config.max_history) : end] for sequence in train for end in range(1, len(sequence))]
        targets = torch.tensor([sequence[end] for sequence in train for end in range(1, len(sequence))], dtype=torch.long)
        self.train_examples = torch.utils.data.TensorDataset(_left_pad(histories, config.max_history), targets)
        self._ndcg: list[np.ndarray] = []

    def train_dataloader(self):
        generator = torch.Generator().manual_seed(self.config.seed + self.current_epoch)
        return torch.utils.data.DataLoader(self.train_examples, batch_size=self.config.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self):
        histories, targets = self.valid
        data = torch.utils.data.TensorDataset(_left_pad(histories, self.config.max_history), torch.from_numpy(targets))
        return torch.utils.data.DataLoader(data, batch_size=self.config.batch_size)

    def training_step(self, batch, batch_index):
        history, target = batch
        loss = F.cross_entropy(self.model.scores(history), target)  # softmax over every catalog item
        self.log("train/loss", loss, prog_bar=True, on_epoch=True, on_step=False, batch_size=len(target))
        return loss

    def validation_step(self, batch, batch_index):
        history, target = batch
        scores = self.model.scores(history).detach().cpu().numpy()
        ranked = top_k_from_scores(scores, 10, history.cpu().numpy() - 1)
        self._ndcg.append(per_request_metrics(ranked, target.cpu().numpy()[:, None], (10,))["ndcg@10"])

    def on_validation_epoch_end(self):
        self.log("val/ndcg@10", float(np.concatenate(self._ndcg).mean()) if self._ndcg else 0.0, prog_bar=True)
        self._ndcg = []

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=self.config.learning_rate)


class SASRecRanker:
    """Ranks the catalog for recommendation requests with a trained SASRec."""

    name = "sasrec"

    def __init__(self, dataset: PreparedDataset, model: SASRec, epochs_trained: int = 0):
        self.dataset, self.model, self.epochs_trained = dataset, model.eval(), epochs_trained

    def rank(self, task: str, requests: Sequence[EvalRequest], k: int) -> np.ndarray:
        if task != "rec":
            raise ValueError("the sasrec baseline ranks recommendation requests only")
        rows = [[self.dataset.catalog.position(item) for item in request.history if item in self.dataset.catalog] for request in requests]
        with torch.no_grad():
            scores = self.model.scores(_left_pad(rows, self.model.config.max_history)).numpy()
        return top_k_from_scores(scores, k, pad_rows(rows))


def train_sasrec(dataset: PreparedDataset, config: SASRecConfig = SASRecConfig()) -> SASRecRanker:
    """Train SASRec on the dataset's training parts; the best validation checkpoint is kept in memory."""
    quiet_lightning()
    L.seed_everything(config.seed, verbose=False)
    position = dataset.catalog.position
    train = [[position(item) for item in split.train] for split in dataset.splits if len(split.train) >= 2]
    valid = rec_requests(dataset, "valid").requests
    rng = np.random.default_rng(config.seed)
    if len(valid) > config.val_max_requests:
        valid = [valid[i] for i in sorted(rng.choice(len(valid), config.val_max_requests, replace=False))]
    valid_rows = ([[position(item) for item in request.history] for request in valid], np.array([position(r.relevant[0]) for r in valid]))
    model = SASRec(len(dataset.catalog), config)
    module = SASRecModule(model, train, valid_rows, config)
    with tempfile.TemporaryDirectory(prefix="unisr-sasrec-") as scratch:
        best = ModelCheckpoint(monitor="val/ndcg@10", mode="max", save_top_k=1, dirpath=scratch, filename="best")
        trainer = make_trainer(
            config.epochs,
            [best, EarlyStopping(monitor="val/ndcg@10", mode="max", patience=config.patience)],
            config.progress,
            max_minutes=config.max_minutes,
            accelerator="cpu",
            reload_dataloaders_every_n_epochs=1,
            num_sanity_val_steps=0,
            default_root_dir=scratch,
        )
        trainer.fit(module)
        if best.best_model_path:
            module.load_state_dict(torch.load(best.best_model_path, map_location="cpu", weights_only=True)["state_dict"])
    return SASRecRanker(dataset, module.model, trainer.current_epoch)
