"""What every Lightning training in unisr shares (tokenizer, decoder, SASRec baseline)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger

QUIET_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda", "lightning.fabric.utilities.seed")
QUIET_WARNINGS = (
    ".*does not have many workers.*",
    ".*LeafSpec.*",
    ".*is_causal.*",
    ".*directory .* exists and is not empty.*",  # a resumed training reuses its logs and checkpoints on purpose
)


def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter and warnings that do not concern users (small CPU data loaders, deprecations)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def make_trainer(
    max_epochs: int,
    callbacks: Sequence[Callback],
    progress: bool,
    log_dir: Path | None = None,
    max_minutes: float = 0,
    accelerator: str = "auto",
    devices: int | str = "auto",
    strategy: str = "auto",
    num_nodes: int = 1,
    **settings,
) -> L.Trainer:
    """The Lightning Trainer every unisr training uses: no model summary, metrics as CSV under ``log_dir`` (none without one).

    ``max_minutes`` > 0 caps the wall time; ``settings`` go to ``L.Trainer`` as they are (each training's own knobs).
    """
    return L.Trainer(
        max_epochs=max_epochs,
        max_time={"minutes": max_minutes} if max_minutes > 0 else None,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        logger=CSVLogger(str(log_dir), name="", version="") if log_dir is not None else False,
        callbacks=list(callbacks),
        enable_progress_bar=progress,
        enable_model_summary=False,
        **settings,
    )
