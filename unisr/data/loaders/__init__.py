"""Loaders: read one public dataset format into ``RawData`` (catalog, user sequences, provenance).

Every loader returns items ordered by first appearance across its returned sequences (users in
their order, each user's items in time order) and keeps only items that some sequence uses.
Shared helpers live in ``common.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from unisr.data.loaders.amazon2014 import DUMPS_LOADER, PROCESSED_LOADER, load_amazon2014_dumps, load_amazon2014_processed
from unisr.data.loaders.amazon2018 import LCREC_LOADER, load_lcrec
from unisr.data.loaders.movielens import ATOMIC_LOADER, GROUPLENS_LOADER, load_movielens_atomic, load_movielens_grouplens
from unisr.data.loaders.synthetic import load_synthetic
from unisr.data.schema import RawData
from unisr.errors import UnisrError

LOADERS: dict[str, Callable[..., RawData]] = {
    PROCESSED_LOADER: load_amazon2014_processed,
    DUMPS_LOADER: load_amazon2014_dumps,
    LCREC_LOADER: load_lcrec,
    ATOMIC_LOADER: load_movielens_atomic,
    GROUPLENS_LOADER: load_movielens_grouplens,
    "synthetic": load_synthetic,
}


def load_source(name: str, **paths: Any) -> RawData:
    """Run the loader registered as ``name`` with the given file arguments (and options such as min_count)."""
    loader = LOADERS.get(name)
    if loader is None:
        raise UnisrError(f"unknown loader {name!r} (known loaders: {', '.join(sorted(LOADERS))})")
    signature = inspect.signature(loader)
    try:
        signature.bind(**paths)
    except TypeError as error:
        raise UnisrError(f"loader {name!r}: {error} (it takes {', '.join(signature.parameters)})") from None
    return loader(**paths)
