"""Embed a prepared dataset's item texts and query texts, with the on-disk cache.

Writes ``<dataset>/embeddings/<model key>/``::

    items.npy          float32 [n_items, dim], rows in catalog order
    queries.npy        float32 [n_query_texts, dim], rows aligned with query_texts.json
    query_texts.json   the distinct query texts, in first-appearance order of queries.jsonl
    meta.json          model, weights sha256, dimension, dataset fingerprint, counts
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from unisr.data.dataset import PreparedDataset
from unisr.embeddings.cache import EmbeddingCache, default_cache_dir
from unisr.embeddings.encoder import DEFAULT_MODEL, ResolvedModel, load_sentence_transformer, resolve_model
from unisr.errors import InputFileError, UnisrError
from unisr.io import atomic_directory, read_json, write_json

EMBEDDINGS_DIR = "embeddings"


@dataclass
class EmbedConfig:
    model: str = DEFAULT_MODEL  # sentence-transformers name or local directory
    batch_size: int = 64  # texts per forward pass
    device: str = "cpu"  # torch device of the encoder
    cache_dir: str | None = None  # embedding cache (default $UNISR_CACHE_DIR or ~/.cache/unisr/embeddings)
    progress: bool = True  # show a progress bar while encoding


class DatasetEmbeddings(NamedTuple):
    directory: Path
    items: np.ndarray  # [n_items, dim], catalog order
    queries: np.ndarray  # [n_query_texts, dim]
    query_texts: list[str]
    meta: dict

    def query_rows(self, texts: list[str]) -> np.ndarray:
        """Row of each text in ``queries``."""
        row = {text: index for index, text in enumerate(self.query_texts)}
        return np.array([row[text] for text in texts], dtype=np.int64)


class EmbedResult(NamedTuple):
    directory: Path
    items: int
    query_texts: int
    encoded: int  # texts that were not in the cache
    dimension: int


class CachedEncoder:
    """A sentence-transformer behind the embedding cache; the model loads only when a text is missing."""

    def __init__(self, config: EmbedConfig):
        self.config = config
        self.model: ResolvedModel = resolve_model(config.model)
        self.cache = EmbeddingCache(Path(config.cache_dir) if config.cache_dir else default_cache_dir() / self.model.key)
        self._encoder = None

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = load_sentence_transformer(self.model, self.config.device)
        return self._encoder.encode(texts, batch_size=self.config.batch_size, show_progress_bar=self.config.progress, convert_to_numpy=True)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, int]:
        return self.cache.encode(texts, self._encode)


def embeddings_dir(dataset_dir: Path, model: ResolvedModel) -> Path:
    return Path(dataset_dir) / EMBEDDINGS_DIR / model.key


def embed_dataset(dataset_dir: str | Path, config: EmbedConfig = EmbedConfig()) -> EmbedResult:
    """Embed items and distinct query texts of a prepared dataset (re-running rewrites from the cache)."""
    dataset = PreparedDataset.load(dataset_dir)
    encoder = CachedEncoder(config)
    query_texts = list(dict.fromkeys(query.text for query in dataset.queries))
    items, encoded_items = encoder.encode(dataset.catalog.texts)
    queries, encoded_queries = encoder.encode(query_texts) if query_texts else (np.zeros((0, items.shape[1]), np.float32), 0)
    target = embeddings_dir(dataset_dir, encoder.model)
    with atomic_directory(target, overwrite=True) as staging:
        np.save(staging / "items.npy", items)
        np.save(staging / "queries.npy", queries.reshape(len(query_texts), items.shape[1]))
        write_json(staging / "query_texts.json", query_texts)
        write_json(
            staging / "meta.json",
            {
                "model": encoder.model.name,
                "location": encoder.model.location,
                "weights_sha256": encoder.model.weights_sha256,
                "bundled": encoder.model.bundled,
                "dimension": int(items.shape[1]),
                "items": len(dataset.catalog),
                "query_texts": len(query_texts),
                "dataset_fingerprint": dataset.fingerprint,
                "text_fields": dataset.manifest["task"]["text_fields"],
                "config": {k: v for k, v in asdict(config).items() if k != "progress"},
            },
        )
    return EmbedResult(target, len(dataset.catalog), len(query_texts), encoded_items + encoded_queries, int(items.shape[1]))


def ensure_embeddings(dataset_dir: str | Path, model: str = DEFAULT_MODEL, progress: bool = True) -> DatasetEmbeddings:
    """The dataset's embeddings for ``model``, computing them (through the cache) when missing or stale."""
    try:
        return load_embeddings(dataset_dir, model)
    except UnisrError:
        embed_dataset(dataset_dir, EmbedConfig(model=model, progress=progress))
        return load_embeddings(dataset_dir, model)


def load_embeddings(dataset_dir: str | Path, model: str = DEFAULT_MODEL) -> DatasetEmbeddings:
    """Read the embeddings that ``embed_dataset`` wrote for ``model``; refuses ones made for other data."""
    dataset_dir = Path(dataset_dir)
    directory = embeddings_dir(dataset_dir, resolve_model(model))
    if not (directory / "meta.json").is_file():
        raise UnisrError(f"{directory}: no embeddings for model {model} (run `unisr embed {dataset_dir} --model {model}`)")
    meta = read_json(directory / "meta.json")
    fingerprint = read_json(dataset_dir / "manifest.json")["fingerprint"]
    if meta.get("dataset_fingerprint") != fingerprint:
        raise UnisrError(f"{directory}: embeddings were made for another version of this dataset (run `unisr embed {dataset_dir}` again)")
    return DatasetEmbeddings(
        directory,
        _load_array(directory / "items.npy", dataset_dir, model),
        _load_array(directory / "queries.npy", dataset_dir, model),
        read_json(directory / "query_texts.json"),
        meta,
    )


def _load_array(path: Path, dataset_dir: Path, model: str) -> np.ndarray:
    """One embeddings array; a missing or damaged file is a UnisrError (so ``ensure_embeddings`` embeds again)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as error:
        problem = "empty or truncated" if isinstance(error, EOFError) else f"unreadable ({error})"
        raise InputFileError(path, problem, f"run `unisr embed {dataset_dir} --model {model}` again") from None
