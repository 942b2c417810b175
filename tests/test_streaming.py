"""Large catalogs: `unisr embed` and `unisr codes assign` work in chunks (conftest's FakeEncoder stands in for MiniLM).

Chunked results equal one-chunk results, and the arrays in memory stay within a few chunks: numpy's allocations
are traced by tracemalloc, the output files are memory maps (not traced).
"""

from __future__ import annotations

import shutil
import tracemalloc

import numpy as np
import pytest

from unisr import api
from unisr.embeddings import DEFAULT_MODEL, EmbedConfig, embed_dataset, load_embeddings, resolve_model
from unisr.tokenizer import assign_codes

DIM = 2048  # wide vectors, so that one full-size array dwarfs the Python objects of the dataset
CHUNK = 64  # texts per chunk (the synthetic task has 400 items and about 1,000 query texts)
FLOAT = 4


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The synthetic task with a cold-start hold-out, prepared (not embedded)."""
    return api.prepare_dataset("synthetic", tmp_path_factory.mktemp("streaming") / "synthetic", cold_start=True)


def traced_peak(function, *args, **kwargs):
    """``function(*args, **kwargs)`` and the peak bytes tracemalloc saw allocated during the call."""
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_embedding_in_chunks_equals_one_chunk_and_holds_one_chunk(synthetic, fake_encoder, tmp_path):
    root, fake_encoder.dim, calls = synthetic.root, DIM, fake_encoder.calls
    whole = embed_dataset(root, EmbedConfig(cache_dir=str(tmp_path / "cache-a"), chunk_size=100_000, progress=False))
    expected = load_embeddings(root)
    assert calls == [len(synthetic.catalog), whole.query_texts]
    calls.clear()

    config = EmbedConfig(cache_dir=str(tmp_path / "cache-b"), chunk_size=CHUNK, progress=False)  # a fresh cache: all encoded again
    chunked, peak = traced_peak(embed_dataset, root, config)
    assert max(calls) == CHUNK and len(calls) > len(synthetic.catalog) // CHUNK
    assert chunked.encoded == whole.encoded == len(synthetic.catalog) + whole.query_texts
    got = load_embeddings(root)
    assert np.array_equal(got.items, expected.items) and np.array_equal(got.queries, expected.queries)
    assert got.query_texts == expected.query_texts
    assert {**got.meta, "config": None} == {**expected.meta, "config": None}  # the cache folders differ

    texts = len(synthetic.catalog) + whole.query_texts
    cached = texts * DIM * FLOAT  # the embedding cache keeps the vectors it encoded in memory (cache.py); not the output
    chunk = CHUNK * DIM * FLOAT
    assert peak < cached + 8 * chunk + cached // 4, f"peak {peak / 2**20:.1f} MB: more than the cache and a few chunks"

    calls.clear()
    again = embed_dataset(root, config)  # from the cache: nothing encoded
    assert again.encoded == 0 and calls == []


def test_assigning_in_chunks_equals_one_chunk_and_reads_the_embeddings_by_chunk(synthetic, fake_encoder, tmp_path):
    root, fake_encoder.dim = synthetic.root, DIM
    embed_dataset(root, EmbedConfig(cache_dir=str(tmp_path / "cache"), chunk_size=CHUNK, progress=False))
    settings = api.tokenizer_config("tokenizer-small", scheme="content", epochs=1, min_code_usage=0.0, progress=False)
    codes = api.train_codes(root, settings, tmp_path / "codes").directory
    cold = sorted(synthetic.cold_start_items)
    chunk = 5
    assert len(cold) > 2 * chunk
    shutil.copytree(codes, tmp_path / "whole")
    whole = assign_codes(tmp_path / "whole", root, chunk_size=100_000)
    nothing, baseline = traced_peak(assign_codes, tmp_path / "whole", root)  # loads the dataset and the codes, assigns nothing
    chunked, peak = traced_peak(assign_codes, codes, root, chunk_size=chunk)
    assert nothing.assigned == [] and sorted(chunked.assigned) == cold and chunked.assigned == whole.assigned
    assert np.array_equal(chunked.table.semantic_ids, whole.table.semantic_ids)
    assert api.load_codes(codes).table.semantic_ids.shape == (len(synthetic.catalog), 4)
    baseline += traced_peak(resolve_model, DEFAULT_MODEL)[1]  # finding the embeddings hashes the model's weights 1 MB at a time
    items_bytes = len(synthetic.catalog) * DIM * FLOAT  # the item embeddings stay on disk (a memory map)
    assert peak - baseline < items_bytes // 4, f"{(peak - baseline) / 2**20:.1f} MB above loading the dataset, codes and model name"
