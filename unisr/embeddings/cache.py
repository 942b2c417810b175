"""On-disk embedding cache keyed by model and text: a second run encodes nothing."""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from unisr.errors import UnisrWarning
from unisr.io import atomic_write_bytes, sha1_text

CACHE_ENV = "UNISR_CACHE_DIR"


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "unisr" / "embeddings")


class EmbeddingCache:
    """Vectors of one model, stored as append-only shards ``shard-<n>.npz`` (keys = sha1 of the text)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._vectors: dict[str, np.ndarray] = {}
        for shard in sorted(self.directory.glob("shard-*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    vectors = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
            except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
                self._drop_corrupt_shard(shard, error)
                continue
            self._vectors.update(vectors)

    def __len__(self) -> int:
        return len(self._vectors)

    def encode(self, texts: Sequence[str], encode_missing: Callable[[list[str]], np.ndarray]) -> tuple[np.ndarray, int]:
        """Vectors for ``texts`` (row per text) and how many had to be encoded."""
        keys = [sha1_text(text) for text in texts]
        missing_keys = list(dict.fromkeys(key for key in keys if key not in self._vectors))
        if missing_keys:
            text_of = dict(zip(keys, texts, strict=True))
            fresh = np.asarray(encode_missing([text_of[key] for key in missing_keys]), dtype=np.float32)
            self._write_shard(missing_keys, fresh)
            self._vectors.update(zip(missing_keys, fresh, strict=True))
        if not keys:
            return np.zeros((0, 0), dtype=np.float32), 0
        return np.stack([self._vectors[key] for key in keys]).astype(np.float32), len(missing_keys)

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
        buffer = io.BytesIO()
        np.savez(buffer, keys=np.array(keys), vectors=vectors)
        number = len(list(self.directory.glob("shard-*.npz")))
        atomic_write_bytes(self.directory / f"shard-{number:05d}-{os.getpid()}.npz", buffer.getvalue())
