"""Semantic-ID tokenizer: RQ-VAE / RQ-KMeans trained on content plus search and co-engagement signals."""

from unisr.tokenizer.artifact import SemanticTokenizer
from unisr.tokenizer.config import QUANTIZERS, SCHEMES, TokenizerConfig
from unisr.tokenizer.health import CodebookCollapseError, HealthReport, format_health
from unisr.tokenizer.ids import IdTable
from unisr.tokenizer.train import AssignResult, CodesResult, assign_codes, train_codes

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
