"""On-disk embedding cache keyed by model and text: a second run encodes nothing.

The cache is a folder of append-only shards ``shard-<time>-<pid>.npz`` (keys = sha1 of the text, and
their vectors). Opening it reads only the shards' keys; a shard's vectors are read the first time
one of its texts is asked for. When the shards grow past ``MAX_SHARDS`` the smaller half is merged into
one, so the folder never holds more than that many files. A cache opened with ``persist=False`` (serving,
ad-hoc queries) reads the disk but keeps what it encodes in a bounded in-memory LRU instead of
writing it, so answering queries never grows the disk.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from unisr.errors import UnisrWarning
from unisr.io import atomic_write_bytes, sha1_text

CACHE_ENV = "UNISR_CACHE_DIR"
MAX_SHARDS = 32  # merge the shards into one when a write would exceed this many
MEMORY_ENTRIES = 4096  # texts an in-memory (persist=False) cache keeps, least recently used dropped first
_UNREADABLE = (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile)


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "unisr" / "embeddings")


class EmbeddingCache:
    """Vectors of one model, by text; see the module docstring for the layout."""

    def __init__(self, directory: Path, persist: bool = True, memory_entries: int = MEMORY_ENTRIES):
        self.directory = Path(directory)
        self.persist = persist
        self.memory_entries = memory_entries
        self._shard_of: dict[str, Path] = {}  # key -> shard holding it
        self._loaded: dict[Path, dict[str, np.ndarray]] = {}  # shards whose vectors were read
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()  # persist=False: encoded here, never written
        for shard in self._shards():
            try:
                with np.load(shard, allow_pickle=False) as data:
                    keys = data["keys"].tolist()
            except _UNREADABLE as error:
                self._drop_corrupt_shard(shard, error)
                continue
            self._shard_of.update(dict.fromkeys(keys, shard))

    def __len__(self) -> int:
        return len(self._shard_of.keys() | self._memory.keys())

    def _shards(self) -> list[Path]:
        return sorted(self.directory.glob("shard-*.npz"))

    def _vector(self, key: str) -> np.ndarray | None:
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        shard = self._shard_of.get(key)
        if shard is None:
            return None
        if shard not in self._loaded:
            try:
                with np.load(shard, allow_pickle=False) as data:
                    self._loaded[shard] = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
            except _UNREADABLE as error:  # removed by another process's merge, or damaged since we opened it
                if not isinstance(error, FileNotFoundError):
                    self._drop_corrupt_shard(shard, error)
                self._shard_of = {known: where for known, where in self._shard_of.items() if where != shard}
                return None
        return self._loaded[shard].get(key)

    def encode(self, texts: Sequence[str], encode_missing: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, int]:
        """Vectors for ``texts`` (row per text) and how many had to be encoded."""
        keys = [sha1_text(text) for text in texts]
        found = {key: vector for key in dict.fromkeys(keys) if (vector := self._vector(key)) is not None}
        missing_keys = [key for key in dict.fromkeys(keys) if key not in found]
        if missing_keys:
            text_of = dict(zip(keys, texts, strict=True))
            fresh = np.asarray(encode_missing([text_of[key] for key in missing_keys]), dtype=np.float32)
            found.update(zip(missing_keys, fresh, strict=True))
            if self.persist:
                self._write_shard(missing_keys, fresh)
            else:
                self._remember(missing_keys, fresh)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32), 0
        return np.stack([found[key] for key in keys]).astype(np.float32), len(missing_keys)

    def _remember(self, keys: list[str], vectors: np.ndarray) -> None:
        for key, vector in zip(keys, vectors, strict=True):
            self._memory[key] = vector
            self._memory.move_to_end(key)
        while len(self._memory) > self.memory_entries:
            self._memory.popitem(last=False)

    @staticmethod
    def _drop_corrupt_shard(shard: Path, error: BaseException) -> None:
        """A cache is only a cache: an unreadable shard (empty, truncated, foreign) is removed and its texts encoded again."""
        if isinstance(error, PermissionError):
            warnings.warn(f"embedding cache shard {shard} cannot be read ({error.strerror}); ignoring it", UnisrWarning, stacklevel=3)
            return
        reason = "empty file" if isinstance(error, EOFError) else f"{type(error).__name__}: {error}"
        try:
            shard.unlink(missing_ok=True)
            action = "removed it; its texts will be encoded again"
        except OSError:
            action = "ignoring it (it could not be removed: delete it by hand)"
        warnings.warn(f"embedding cache shard {shard} is unreadable ({reason}); {action}", UnisrWarning, stacklevel=3)

    def _write_shard(self, keys: list[str], vectors: np.ndarray) -> None:
        """Append one shard; past ``MAX_SHARDS``, the smaller half of the shards is merged into it first (sizes grow
        geometrically, so each vector is rewritten about log(n) times). Written vectors are not kept in memory."""
        shards = self._shards()
        merged: list[Path] = []
        if len(shards) + 1 > MAX_SHARDS:
            merged = sorted(shards, key=lambda shard: shard.stat().st_size)[: len(shards) // 2 + 1]
            keys, vectors = self._merged_with(merged, keys, vectors)
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(keys), vectors=vectors)
        shard = self.directory / f"shard-{time.time_ns()}-{os.getpid()}.npz"
        atomic_write_bytes(shard, buffer.getvalue())
        for old in merged:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
            self._loaded.pop(old, None)
        self._shard_of.update(dict.fromkeys(keys, shard))

    def _merged_with(self, shards: list[Path], keys: list[str], vectors: np.ndarray) -> tuple[list[str], np.ndarray]:
        """The readable ``shards``' keys and vectors followed by the new ones (the input of one merged shard)."""
        merged: dict[str, np.ndarray] = {}
        for shard in shards:
            try:
                with np.load(shard, allow_pickle=False) as data:
                    merged.update(zip(data["keys"].tolist(), data["vectors"], strict=True))
            except _UNREADABLE:
                continue
        merged.update(zip(keys, vectors, strict=True))
        return list(merged), np.stack(list(merged.values())).astype(np.float32)
