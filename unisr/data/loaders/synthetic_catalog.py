"""The synthetic marketplace's vocabulary: a category tree (top > sub > leaf categories with their words) and brand names.

They live in ``synthetic_catalog.json`` beside this module (package data, so a wheel carries it), are read once on
first use, and checked on reading: a malformed file is a one-line error naming it and the first bad entry.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from dataclasses import dataclass
from pathlib import Path

from unisr.errors import InputFileError

CATALOG_FILE = "synthetic_catalog.json"
CATALOG_KEYS = ("categories", "brands")
CATALOG_OPTIONAL_KEYS = ("about",)  # a note for readers of the file
TOP_KEYS = ("name", "subcategories")
SUB_KEYS = ("name", "leaves")
LEAF_KEYS = ("name", "noun", "synonyms", "adjectives", "variants", "features", "price_range")


@dataclass(frozen=True)
class LeafVocabulary:
    """The words of one leaf category: adjectives and variants go into titles and queries, features into descriptions, synonyms
    into queries only."""

    name: str  # category name, e.g. Frying Pans
    noun: str  # title noun, e.g. Frying Pan
    synonyms: tuple[str, ...]
    adjectives: tuple[str, ...]
    variants: tuple[str, ...]
    features: tuple[str, ...]
    price_range: tuple[float, float]  # lowest and highest price in dollars


@dataclass(frozen=True)
class Subcategory:
    name: str
    leaves: tuple[LeafVocabulary, ...]


@dataclass(frozen=True)
class TopCategory:
    name: str
    subcategories: tuple[Subcategory, ...]


@dataclass(frozen=True)
class SyntheticCatalog:
    """The generator's vocabulary: top categories > subcategories > leaves, and brand names; a config takes the first n of each."""

    categories: tuple[TopCategory, ...]
    brands: tuple[str, ...]

    @property
    def max_top(self) -> int:
        return len(self.categories)

    @property
    def max_sub(self) -> int:
        return min(len(top.subcategories) for top in self.categories)

    @property
    def max_leaf(self) -> int:
        return min(len(sub.leaves) for top in self.categories for sub in top.subcategories)


class CatalogFormatError(ValueError):
    """The first problem of a catalog, naming where it is (``categories[2].subcategories[0].leaves[1].synonyms``)."""


def _record(value, where: str, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict) or not set(keys) <= set(value) <= set(keys) | set(optional):
        raise CatalogFormatError(f"{where} must be an object with the keys {', '.join(keys)}")
    return value


def _entries(value, where: str) -> list:
    if not isinstance(value, list) or not value:
        raise CatalogFormatError(f"{where} must be a non-empty list")
    return value


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CatalogFormatError(f"{where} must be a non-empty string")
    return value


def _texts(value, where: str) -> tuple[str, ...]:
    return tuple(_text(entry, f"{where}[{index}]") for index, entry in enumerate(_entries(value, where)))


def _price_range(value, where: str) -> tuple[float, float]:
    numbers = isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    if not numbers or not 0 < value[0] <= value[1]:
        raise CatalogFormatError(f"{where} must be [lowest, highest] with 0 < lowest <= highest")
    return float(value[0]), float(value[1])


def _leaf_vocabulary(value, where: str) -> LeafVocabulary:
    record = _record(value, where, LEAF_KEYS)
    words = [_texts(record[key], f"{where}.{key}") for key in ("synonyms", "adjectives", "variants", "features")]
    return LeafVocabulary(
        _text(record["name"], f"{where}.name"),
        _text(record["noun"], f"{where}.noun"),
        *words,
        _price_range(record["price_range"], f"{where}.price_range"),
    )


def parse_catalog(data) -> SyntheticCatalog:
    """A catalog from the parsed JSON of a catalog file; raises ``CatalogFormatError`` at the first malformed entry."""
    record = _record(data, "the file", CATALOG_KEYS, CATALOG_OPTIONAL_KEYS)
    categories = []
    for t, top in enumerate(_entries(record["categories"], "categories")):
        top_where = f"categories[{t}]"
        top = _record(top, top_where, TOP_KEYS)
        subcategories = []
        for s, sub in enumerate(_entries(top["subcategories"], f"{top_where}.subcategories")):
            sub_where = f"{top_where}.subcategories[{s}]"
            sub = _record(sub, sub_where, SUB_KEYS)
            leaves = tuple(
                _leaf_vocabulary(leaf, f"{sub_where}.leaves[{i}]") for i, leaf in enumerate(_entries(sub["leaves"], f"{sub_where}.leaves"))
            )
            subcategories.append(Subcategory(_text(sub["name"], f"{sub_where}.name"), leaves))
        categories.append(TopCategory(_text(top["name"], f"{top_where}.name"), tuple(subcategories)))
    return SyntheticCatalog(tuple(categories), _texts(record["brands"], "brands"))


def read_catalog(path: Path | importlib.resources.abc.Traversable) -> SyntheticCatalog:
    """A catalog file; a missing or malformed one is a one-line ``InputFileError`` naming it."""
    fix = "reinstall unisr, or restore the file from its repository"
    try:
        return parse_catalog(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise InputFileError(path, "the synthetic generator's catalog is missing", fix) from None
    except json.JSONDecodeError as error:
        raise InputFileError(path, f"not valid JSON ({error.msg})", fix, error.lineno) from None
    except CatalogFormatError as error:
        raise InputFileError(path, str(error), fix) from None


@functools.cache
def synthetic_catalog() -> SyntheticCatalog:
    """The catalog shipped in the package, read once."""
    return read_catalog(importlib.resources.files(__package__).joinpath(CATALOG_FILE))
