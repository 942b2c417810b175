"""Semantic-ID tokenizer: RQ-VAE / RQ-KMeans trained on content plus search and co-engagement signals.

Importing the package loads no training code; ``train_codes``/``assign_codes`` (Lightning) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unisr.tokenizer.artifact import SemanticTokenizer
from unisr.tokenizer.config import QUANTIZERS, SCHEMES, TokenizerConfig
from unisr.tokenizer.health import CodebookCollapseError, HealthReport, format_health
from unisr.tokenizer.ids import IdTable

if TYPE_CHECKING:
    from unisr.tokenizer.train import AssignResult, CodesResult, assign_codes, train_codes

TRAINING_NAMES = ("AssignResult", "CodesResult", "assign_codes", "train_codes")

__all__ = [
    "QUANTIZERS",
    "SCHEMES",
    "AssignResult",
    "CodebookCollapseError",
    "CodesResult",
    "HealthReport",
    "IdTable",
    "SemanticTokenizer",
    "TokenizerConfig",
    "assign_codes",
    "format_health",
    "train_codes",
]


def __getattr__(name: str):
    if name in TRAINING_NAMES:
        from unisr.tokenizer import train

        return getattr(train, name)
    raise AttributeError(f"module 'unisr.tokenizer' has no attribute {name!r}")
