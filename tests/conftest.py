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
