"""Configuration of the semantic-ID tokenizer (defaults: TIGER's RQ-VAE; overrides in configs/*.yaml)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import NamedTuple

from unisr.config import check_types
from unisr.errors import UnisrError
from unisr.validate import AT_LEAST_0, AT_LEAST_1, POSITIVE, check_settings

SCHEMES = ("content", "search", "rec", "joint")  # which signals shape the codes


class QuantizerKind(NamedTuple):
    """What training and coding do for one quantizer: the one place a new quantizer is described."""

    name: str
    summary: str  # one line for help texts
    trains_encoder: bool  # the MLP encoder (and decoder) is trained on the items and signals
    quantizes_in_training: bool  # the codebooks are trained with the encoder (straight-through), as in an RQ-VAE
    fits_codebooks_after: bool  # residual k-means on the trained encoder's latents gives the codebooks
    semantic: bool  # the codes follow content (False: a seeded hash, the non-semantic baseline)
    module: str = "unisr.tokenizer.quantizer:ResidualQuantizer"  # the nn.Module class that quantizes (module:Class)

    def quantizer_class(self) -> type:
        """The quantizer class: built as ``Class(levels, codebook_size, latent_dim)``, with ``ResidualQuantizer``'s methods."""
        module, _, name = self.module.partition(":")
        return getattr(importlib.import_module(module), name)


QUANTIZER_KINDS: dict[str, QuantizerKind] = {}


def register_quantizer(kind: QuantizerKind) -> QuantizerKind:
    """Make ``kind`` a choice of ``--quantizer`` (CLI, configs, the comparison); the one line a new quantizer adds."""
    QUANTIZER_KINDS[kind.name] = kind
    return kind


register_quantizer(QuantizerKind("rqvae", "trained codebooks (RQ-VAE)", True, True, False, True))
register_quantizer(QuantizerKind("rqkmeans", "encoder first, then residual k-means", True, False, True, True))
register_quantizer(QuantizerKind("random", "non-semantic IDs of the same length (baseline)", False, False, False, False))
QUANTIZERS = tuple(QUANTIZER_KINDS)  # the built-in ones; registered ones are in QUANTIZER_KINDS


def semantic_quantizers() -> tuple[str, ...]:
    """Registered quantizers whose codes follow content (the comparison's choices)."""
    return tuple(name for name, kind in QUANTIZER_KINDS.items() if kind.semantic)


SEMANTIC_QUANTIZERS = semantic_quantizers()
SIGNAL_LATENTS = ("pre", "post")  # where the signal losses act: encoder output, or quantized (straight-through)
PAIR_WEIGHTINGS = ("uniform", "inverse_distance")
OWNER = "tokenizer setting"
BOUNDS = {  # ranges of the settings that __post_init__ does not check one by one
    "beta": AT_LEAST_0,
    "lambda_search": AT_LEAST_0,
    "lambda_rec": AT_LEAST_0,
    "temperature": POSITIVE,
    "learning_rate": POSITIVE,
    "weight_decay": AT_LEAST_0,
    "kmeans_init_points": AT_LEAST_1,
    "dead_code_threshold": AT_LEAST_0,
    "devices": AT_LEAST_1,
    "num_nodes": AT_LEAST_1,
}


@dataclass
class TokenizerConfig:
    scheme: str = "joint"  # content | search | rec | joint
    quantizer: str = "rqvae"  # rqvae (trained codebooks) | rqkmeans (encoder first, then residual k-means) | random (no training)
    levels: int = 3  # residual levels, before the collision token
    codebook_size: int = 256  # codes per level
    latent_dim: int = 32  # size of the quantized latent
    hidden_dims: list[int] = field(default_factory=lambda: [512, 256, 128])  # MLP encoder widths (decoder mirrors them)
    beta: float = 0.25  # commitment weight
    lambda_search: float = 1.0  # weight of the query-item contrastive loss (used by schemes search, joint)
    lambda_rec: float = 1.0  # weight of the co-engagement contrastive loss (used by schemes rec, joint)
    temperature: float = 0.1  # InfoNCE temperature
    signal_latent: str = "pre"  # pre | post: latent the signal losses act on (chosen by measurement, see README)
    window: int = 3  # co-engagement window: items at most this many steps apart in a training sequence
    pair_weighting: str = "inverse_distance"  # uniform | inverse_distance: sampling weight of a co-engaged pair
    learning_rate: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam weight decay
    epochs: int = 200  # passes over the training items
    batch_size: int = 1024  # items per step (and pairs per signal per step)
    kmeans_init_points: int = 20000  # items used to k-means-initialise each level
    dead_code_threshold: int = 1  # codes used fewer times than this in an epoch are re-seeded from data
    min_code_usage: float = 0.05  # collapse floor: a level must use this share of min(codebook_size, items) codes
    seed: int = 0  # seed of everything: init, batches, k-means, re-seeding
    accelerator: str = "cpu"  # Lightning accelerator (cpu, gpu, auto)
    devices: int = 1  # Lightning devices (processes with strategy ddp)
    strategy: str = "auto"  # Lightning strategy (auto, ddp, ddp_spawn)
    num_nodes: int = 1  # Lightning nodes
    progress: bool = True  # progress bar

    def __post_init__(self):
        check_types(self, OWNER)
        for name, value, allowed in (
            ("scheme", self.scheme, SCHEMES),
            ("quantizer", self.quantizer, tuple(QUANTIZER_KINDS)),
            ("signal_latent", self.signal_latent, SIGNAL_LATENTS),
            ("pair_weighting", self.pair_weighting, PAIR_WEIGHTINGS),
        ):
            if value not in allowed:
                raise UnisrError(f"tokenizer setting {name}={value!r} is not one of {', '.join(allowed)}")
        for name in ("levels", "codebook_size", "latent_dim", "epochs", "batch_size", "window"):
            if getattr(self, name) < 1:
                raise UnisrError(f"tokenizer setting {name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.min_code_usage <= 1:
            raise UnisrError(f"tokenizer setting min_code_usage must lie in [0, 1], got {self.min_code_usage}")
        if min(self.hidden_dims, default=1) < 1:
            raise UnisrError(f"{OWNER} hidden_dims={self.hidden_dims}: every width must be at least 1")
        check_settings(OWNER, vars(self), BOUNDS)

    @property
    def quantizer_kind(self) -> QuantizerKind:
        return QUANTIZER_KINDS[self.quantizer]

    @property
    def uses_search(self) -> bool:
        return self.scheme in ("search", "joint") and self.lambda_search > 0

    @property
    def uses_rec(self) -> bool:
        return self.scheme in ("rec", "joint") and self.lambda_rec > 0

    @property
    def id_length(self) -> int:
        """Tokens per semantic ID: the residual levels plus the collision token (derived, never set)."""
        return self.levels + 1
