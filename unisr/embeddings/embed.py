"""Embed a prepared dataset's item texts and query texts, with the on-disk cache.

Writes ``<dataset>/embeddings/<model key>/``::

    items.npy          float32 [n_items, dim], rows in catalog order
    queries.npy        float32 [n_query_texts, dim], rows aligned with query_texts.json
    query_texts.json   the distinct query texts, in first-appearance order of queries.jsonl
    meta.json          model, weights sha256, dimension, dataset fingerprint, counts
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from unisr.data.dataset import PreparedDataset
from unisr.embeddings.cache import EmbeddingCache, default_cache_dir
from unisr.embeddings.encoder import DEFAULT_MODEL, ResolvedModel, encode_without_padding, load_sentence_transformer, resolve_model
from unisr.errors import InputFileError, UnisrError
from unisr.io import atomic_directory, read_json, write_json
from unisr.validate import AT_LEAST_1, check_bool, check_int, check_path, check_text

EMBEDDINGS_DIR = "embeddings"
CHUNK_SIZE = 4096  # texts per chunk: their vectors go to the output file before the next chunk is encoded
CACHE_SCHEME = "unpadded"  # how cached vectors were computed (see encoder.encode_without_padding)


@dataclass
class EmbedConfig:
    model: str = DEFAULT_MODEL  # sentence-transformers name or local directory
    batch_size: int = 64  # texts per forward pass
    device: str = "cpu"  # torch device of the encoder
    cache_dir: str | None = None  # embedding cache (default $UNISR_CACHE_DIR or ~/.cache/unisr/embeddings)
    progress: bool = True  # show a progress bar while encoding
    chunk_size: int = CHUNK_SIZE  # texts encoded per chunk (memory holds one chunk of vectors; the files are written as they go)

    def __post_init__(self):
        self.model = check_text(self.model, "embed setting model", "model name or directory")
        self.batch_size = check_int(self.batch_size, "embed setting batch_size", AT_LEAST_1)
        self.device = check_text(self.device, "embed setting device", "torch device")
        self.cache_dir = None if self.cache_dir is None else str(check_path(self.cache_dir, "embed setting cache_dir"))
        self.progress = check_bool(self.progress, "embed setting progress")
        self.chunk_size = check_int(self.chunk_size, "embed setting chunk_size", AT_LEAST_1)


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

    def __init__(self, config: EmbedConfig, persist: bool = True):
        """``persist=False`` (answering queries) reads the on-disk cache but keeps new vectors in memory only."""
        self.config = config
        self.model: ResolvedModel = resolve_model(config.model)
        directory = Path(config.cache_dir) if config.cache_dir else default_cache_dir() / f"{self.model.key}-{CACHE_SCHEME}"
        self.cache = EmbeddingCache(directory, persist=persist)
        self._encoder = None

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self._encoder is None:
            self._encoder = load_sentence_transformer(self.model, self.config.device)
        return encode_without_padding(self._encoder, texts, self.config.batch_size, self.config.progress)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, int]:
        return self.cache.encode(texts, self._encode)


def embeddings_dir(dataset_dir: Path, model: ResolvedModel) -> Path:
    return Path(dataset_dir) / EMBEDDINGS_DIR / model.key


class _Written(NamedTuple):
    encoded: int  # texts that were not in the cache
    dimension: int


def _encode_into(path: Path, texts: list[str], encoder: CachedEncoder, config: EmbedConfig, what: str, dimension: int = 0) -> _Written:
    """Encode ``texts`` chunk by chunk into a preallocated ``.npy`` at ``path`` (a memmap): memory holds one chunk of vectors.

    ``dimension`` shapes the file when there are no texts.
    """
    from tqdm.auto import tqdm

    output, encoded = None, 0
    with tqdm(total=len(texts), desc=f"embedding {what}", unit="text", disable=not config.progress) as bar:
        for start in range(0, len(texts), config.chunk_size):
            vectors, fresh = encoder.encode(texts[start : start + config.chunk_size])
            if output is None:
                dimension = int(vectors.shape[1])
                output = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(len(texts), dimension))
            output[start : start + len(vectors)] = vectors
            encoded += fresh
            bar.update(len(vectors))
    if output is None:
        np.save(path, np.zeros((0, dimension), dtype=np.float32))
    else:
        output.flush()
        del output  # unmapped before the staging folder is renamed
    return _Written(encoded, dimension)


def embed_dataset(dataset_dir: str | Path, config: EmbedConfig = EmbedConfig()) -> EmbedResult:
    """Embed items and distinct query texts of a prepared dataset (re-running rewrites from the cache).

    Texts are encoded ``config.chunk_size`` at a time, each chunk's vectors written into the preallocated output
    files of a staging folder that replaces the embeddings directory at the end (never half written).
    """
    dataset = PreparedDataset.load(dataset_dir)
    encoder = CachedEncoder(dataclasses.replace(config, progress=False))  # one bar over all texts (below), not one per chunk
    query_texts = list(dict.fromkeys(query.text for query in dataset.queries))
    target = embeddings_dir(dataset_dir, encoder.model)
    with atomic_directory(target, overwrite=True) as staging:
        items = _encode_into(staging / "items.npy", dataset.catalog.texts, encoder, config, "items")
        queries = _encode_into(staging / "queries.npy", query_texts, encoder, config, "query texts", items.dimension)
        write_json(staging / "query_texts.json", query_texts)
        write_json(
            staging / "meta.json",
            {
                "model": encoder.model.name,
                "location": encoder.model.location,
                "weights_sha256": encoder.model.weights_sha256,
                "bundled": encoder.model.bundled,
                "dimension": items.dimension,
                "items": len(dataset.catalog),
                "query_texts": len(query_texts),
                "dataset_fingerprint": dataset.fingerprint,
                "text_fields": dataset.manifest["task"]["text_fields"],
                "config": {k: v for k, v in asdict(config).items() if k not in ("progress", "chunk_size")},
            },
        )
    return EmbedResult(target, len(dataset.catalog), len(query_texts), items.encoded + queries.encoded, items.dimension)


def ensure_embeddings(dataset_dir: str | Path, model: str = DEFAULT_MODEL, progress: bool = True, mmap: bool = False) -> DatasetEmbeddings:
    """The dataset's embeddings for ``model``, computing them (through the cache) when missing or stale."""
    try:
        return load_embeddings(dataset_dir, model, mmap)
    except UnisrError:
        embed_dataset(dataset_dir, EmbedConfig(model=model, progress=progress))
        return load_embeddings(dataset_dir, model, mmap)


def load_embeddings(dataset_dir: str | Path, model: str = DEFAULT_MODEL, mmap: bool = False) -> DatasetEmbeddings:
    """Read the embeddings that ``embed_dataset`` wrote for ``model``; refuses ones made for other data.

    ``mmap``: the arrays are read-only memory maps (rows are read from disk when indexed), for catalogs larger than memory.
    """
    dataset_dir = Path(dataset_dir)
    directory = embeddings_dir(dataset_dir, resolve_model(model))
    if not (directory / "meta.json").is_file():
        raise UnisrError(f"{directory}: no embeddings for model {model} (run `unisr embed {dataset_dir} --model {model}`)")
    meta = read_json(directory / "meta.json")
    if not isinstance(meta, dict):
        raise InputFileError(directory / "meta.json", "expected a JSON object", f"run `unisr embed {dataset_dir} --model {model}` again")
    fingerprint = read_json(dataset_dir / "manifest.json")["fingerprint"]
    if meta.get("dataset_fingerprint") != fingerprint:
        raise UnisrError(f"{directory}: embeddings were made for another version of this dataset (run `unisr embed {dataset_dir}` again)")
    fix = f"run `unisr embed {dataset_dir} --model {model}` again"
    items = _load_array(directory / "items.npy", dataset_dir, model, mmap)
    queries = _load_array(directory / "queries.npy", dataset_dir, model, mmap)
    query_texts = read_json(directory / "query_texts.json")
    if not isinstance(query_texts, list) or not all(isinstance(text, str) for text in query_texts):
        raise InputFileError(directory / "query_texts.json", "expected a JSON list of query texts", fix)
    item_count = read_json(dataset_dir / "manifest.json").get("counts", {}).get("items")
    for path, array, rows in (("items.npy", items, item_count), ("queries.npy", queries, len(query_texts))):
        width = items.shape[-1] if items.ndim else None
        shaped = array.ndim == 2 and array.shape[1] == width and (rows is None or len(array) == rows)
        if not shaped or not np.issubdtype(array.dtype, np.floating):
            raise InputFileError(
                directory / path, f"holds a {array.dtype} array of shape {array.shape}, expected {rows} rows of {width} floats", fix
            )
    return DatasetEmbeddings(directory, items, queries, query_texts, meta)


def _load_array(path: Path, dataset_dir: Path, model: str, mmap: bool = False) -> np.ndarray:
    """One embeddings array; a missing or damaged file is a UnisrError (so ``ensure_embeddings`` embeds again)."""
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, EOFError, ValueError) as error:
        problem = "empty or truncated" if isinstance(error, EOFError) else f"unreadable ({error})"
        raise InputFileError(path, problem, f"run `unisr embed {dataset_dir} --model {model}` again") from None
