"""Item and query text → vectors with sentence-transformers, cached on disk."""

from unisr.embeddings.embed import (
    CachedEncoder,
    DatasetEmbeddings,
    EmbedConfig,
    EmbedResult,
    embed_dataset,
    ensure_embeddings,
    load_embeddings,
)
from unisr.embeddings.encoder import DEFAULT_MODEL, ResolvedModel, WordPieces, resolve_model

__all__ = [
    "DEFAULT_MODEL",
    "CachedEncoder",
    "DatasetEmbeddings",
    "EmbedConfig",
    "EmbedResult",
    "ResolvedModel",
    "WordPieces",
    "embed_dataset",
    "ensure_embeddings",
    "load_embeddings",
    "resolve_model",
]
