"""Configuration of the generative decoder (defaults: TIGER's sizes; overrides in configs/decoder*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass

from unisr.config import check_types
from unisr.data.schema import TASKS
from unisr.errors import UnisrError
from unisr.validate import AT_LEAST_0, AT_LEAST_1, DROPOUT, POSITIVE, check_settings

OWNER = "decoder setting"
LR_SCHEDULES = ("inverse_sqrt", "cosine")
PRECISIONS = ("32-true", "bf16-mixed")  # Lightning precision of training
GUIDANCE_PRIORS = ("codes", "items", "both")  # decoder.guidance: the tokenizer's residual prior over codes, the exact item prior,
# or both (the mean of their log-priors)
ITEM_SHARE = {"codes": 0.0, "items": 1.0, "both": 0.5}  # share of the item prior in the log-prior each one weights
PIECE_INITS = ("learned", "encoder")  # word-piece table: learned from scratch, or the sentence encoder's input embeddings (frozen)
BOUNDS = {  # ranges of the settings that __post_init__ does not check one by one
    "dropout": DROPOUT,
    "query_tokens": AT_LEAST_1,
    "query_pieces": AT_LEAST_0,
    "user_buckets": AT_LEAST_0,
    "learning_rate": POSITIVE,
    "warmup_steps": AT_LEAST_0,
    "weight_decay": AT_LEAST_0,
    "examples_per_epoch": AT_LEAST_0,
    "patience": AT_LEAST_0,
    "beam_size": AT_LEAST_1,
    "top_k": AT_LEAST_1,
    "val_max_requests": AT_LEAST_1,
    "threads": AT_LEAST_0,
    "devices": AT_LEAST_1,
    "num_nodes": AT_LEAST_1,
}


@dataclass
class DecoderConfig:
    tasks: tuple[str, ...] = ("rec", "search")  # which tasks the model is trained on
    search_share: float = 0.5  # expected share of search examples in a batch when both tasks train
    encoder_layers: int = 4  # transformer encoder blocks
    decoder_layers: int = 4  # transformer decoder blocks
    d_model: int = 128  # model width
    heads: int = 6  # attention heads
    head_dim: int = 64  # width of one head (heads × head_dim may differ from d_model, as in T5)
    feed_forward: int = 1024  # feed-forward width
    dropout: float = 0.1  # dropout
    max_history: int = 20  # most recent items fed to the model
    every_position: bool = True  # one pass teaches the next item after every position of a history (else one row per target)
    history_content: bool = True  # history items also enter with a projection of their frozen content embedding
    query_tokens: int = 4  # soft tokens the frozen sentence embedding of a query is projected to
    query_pieces: int = 0  # the query text's first word pieces (sentence encoder's tokenizer) read as learned tokens; 0 = none
    query_piece_init: str = "learned"  # learned (table from scratch) or encoder (the sentence encoder's input embeddings reduced
    # to d_model by PCA, frozen, then a learned projection: pieces never seen in training still carry their meaning)
    user_buckets: int = 0  # hashed user tokens (TIGER used 2000; reported to help little); 0 = none
    index_share: float = 0.0  # share of each epoch's targets that are indexing examples (an item's own text → its ID); 0 = none
    search_history: bool = True  # personalized search: append the user's history to the query where known
    learning_rate: float = 1e-3  # AdamW peak learning rate
    warmup_steps: int = 500  # linear warm-up steps
    lr_schedule: str = "inverse_sqrt"  # decay after warm-up: inverse_sqrt (TIGER) or cosine (0 at the last planned step or max_minutes)
    weight_decay: float = 0.01  # AdamW weight decay
    batch_size: int = 256  # targets per step (rows are added until their targets reach it)
    epochs: int = 10  # passes over the training examples
    max_minutes: float = 0  # stop training after this many minutes of wall time (0 = no limit); the best checkpoint is kept
    examples_per_epoch: int = 0  # targets drawn per epoch (rows repeat when more than there are); 0 = one pass
    patience: int = 3  # early stopping: validations without improvement of the validation Recall@10
    beam_size: int = 20  # beam width of decoding
    guidance_rec: float = 0.0  # weight of the tokenizer's content prior of the last history item in beam search (0 = pure decoder)
    guidance_search: float = 0.0  # weight of the tokenizer's content prior of the query in beam search (0 = pure decoder)
    guidance_prior_rec: str = "codes"  # the prior guidance_rec weights: codes (residual quantization of the anchor's tokenizer
    # latent), items (a softmax over all items by standardized cosine of content embeddings, marginalized exactly over the trie),
    # or both (the mean of the two log-priors)
    guidance_prior_search: str = "codes"  # the prior guidance_search weights (codes, items or both: the mean of the two log-priors)
    guidance_priors: tuple[str, ...] = GUIDANCE_PRIORS  # priors the sweep after training tries with every weight of the grid;
    # the best (prior, weight) per task on validation replaces guidance_prior_*/guidance_* in the run's config
    guidance_training: float = 0.0  # weight of the content prior inside the model: trained with softmax(logits + w * log prior),
    # decoded the same way (0 = none)
    guidance_grid: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # weights tried on validation after training; the best
    # per task replaces guidance_rec/guidance_search in the run's config (empty: keep them as set)
    top_k: int = 10  # items returned per request
    cold_share: float = 0.0  # rec: share of ranks kept for cold items (in no training history; TIGER's ε): 0.1 → ranks 10, 20, …; 0 = off
    val_max_requests: int = 2000  # validation requests per task used for checkpoint selection (seeded subsample)
    threads: int = 0  # torch intra-op threads (0 = torch default)
    seed: int = 0  # seed of init, batches and subsamples
    precision: str = "32-true"  # training arithmetic: 32-true, or bf16-mixed (bf16 autocast; weights, validation, inference: float32)
    accelerator: str = "cpu"  # Lightning accelerator
    devices: int = 1  # Lightning devices
    strategy: str = "auto"  # Lightning strategy (auto, ddp, ddp_spawn)
    num_nodes: int = 1  # Lightning nodes
    progress: bool = True  # progress bar

    def __post_init__(self):
        check_types(self, OWNER)
        check_settings(OWNER, vars(self), BOUNDS)
        if self.lr_schedule not in LR_SCHEDULES:
            raise UnisrError(f"decoder setting lr_schedule={self.lr_schedule!r}: choose from {', '.join(LR_SCHEDULES)}")
        if self.query_piece_init not in PIECE_INITS:
            raise UnisrError(f"decoder setting query_piece_init={self.query_piece_init!r}: choose from {', '.join(PIECE_INITS)}")
        for name, value in (("guidance_prior_rec", self.guidance_prior_rec), ("guidance_prior_search", self.guidance_prior_search)):
            if value not in GUIDANCE_PRIORS:
                raise UnisrError(f"decoder setting {name}={value!r}: choose from {', '.join(GUIDANCE_PRIORS)}")
        if not self.guidance_priors or any(prior not in GUIDANCE_PRIORS for prior in self.guidance_priors):
            raise UnisrError(
                f"decoder setting guidance_priors={','.join(self.guidance_priors)!r}: choose one or more of {', '.join(GUIDANCE_PRIORS)}"
            )
        if self.precision not in PRECISIONS:
            raise UnisrError(f"decoder setting precision={self.precision!r}: choose from {', '.join(PRECISIONS)}")
        if not self.tasks or any(task not in TASKS for task in self.tasks):
            raise UnisrError(f"decoder setting tasks={','.join(self.tasks)!r}: choose from {', '.join(TASKS)}")
        if self.beam_size < self.top_k:
            raise UnisrError(f"decoder setting beam_size={self.beam_size} must be at least top_k={self.top_k}")
        if self.max_minutes < 0:
            raise UnisrError(f"decoder setting max_minutes must be at least 0 (0 = no limit), got {self.max_minutes}")
        if not 0 <= self.index_share < 1:
            raise UnisrError(f"decoder setting index_share must lie in [0, 1), got {self.index_share}")
        if min(self.guidance_rec, self.guidance_search, self.guidance_training, *self.guidance_grid) < 0:
            raise UnisrError("decoder settings guidance_rec, guidance_search, guidance_training, guidance_grid must be ≥ 0 (0 = none)")
        if not 0 <= self.cold_share <= 1:
            raise UnisrError(f"decoder setting cold_share must lie in [0, 1] (0 = off), got {self.cold_share}")
        if not 0 <= self.search_share <= 1:
            raise UnisrError(f"decoder setting search_share must lie in [0, 1], got {self.search_share}")
        for name in (
            "encoder_layers",
            "decoder_layers",
            "d_model",
            "heads",
            "head_dim",
            "feed_forward",
            "max_history",
            "batch_size",
            "epochs",
        ):
            if getattr(self, name) < 1:
                raise UnisrError(f"decoder setting {name} must be at least 1, got {getattr(self, name)}")
