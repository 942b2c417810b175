"""What every Lightning training in unisr shares (tokenizer, decoder, SASRec baseline)."""

from __future__ import annotations

import logging
import warnings

QUIET_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda", "lightning.fabric.utilities.seed")
QUIET_WARNINGS = (".*does not have many workers.*", ".*LeafSpec.*", ".*is_causal.*")


def quiet_lightning() -> None:
    """Silence Lightning's start-up chatter and warnings that do not concern users (small CPU data loaders, deprecations)."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
