from __future__ import annotations

import json
import math

import numpy as np
import pytest

from unisr import api
from unisr.embeddings import load_embeddings
from unisr.errors import UnisrError
from unisr.evaluation import (
    BM25Ranker,
    DenseRanker,
    EvalRequest,
    PopularityRanker,
    TaskRequests,
    evaluate,
    per_request_metrics,
    popularity_groups,
    task_requests,
    top_k_from_scores,
)


def test_metrics_match_hand_computed_values():
    ranked = np.array([[3, 1, 2], [0, 2, -1], [5, 6, 7]])
    relevant = np.array([[1, -1], [2, 0], [9, -1]])  # request 3's item is outside the list
    values = per_request_metrics(ranked, relevant, ks=(1, 2, 3))
    assert values["recall@1"].tolist() == [0.0, 0.5, 0.0]
    assert values["recall@2"].tolist() == [1.0, 1.0, 0.0]
    assert np.allclose(values["ndcg@2"], [1 / math.log2(3), 1.0, 0.0])
    assert np.isclose(values["ndcg@3"][0], 1 / math.log2(3))  # one relevant item: ideal DCG = 1
    assert np.isclose(values["ndcg@3"][1], 1.0)  # both relevant items at ranks 1-2
    assert values["recall@3"].tolist() == [1.0, 1.0, 0.0]


def test_ties_go_to_the_lower_catalog_row_and_exclusions_are_skipped():
    scores = np.array([[0.5, 0.9, 0.9, 0.1], [1.0, 1.0, 1.0, 1.0]])
    assert top_k_from_scores(scores, 3).tolist() == [[1, 2, 0], [0, 1, 2]]
    assert top_k_from_scores(scores, 3, exclude=np.array([[1, -1], [0, 2]])).tolist() == [[2, 0, 3], [1, 3, -1]]
    # a tie at the cut-off: the target at row 2 ties with row 1 and loses the only slot
    values = per_request_metrics(top_k_from_scores(scores[:1], 1), np.array([[2]]), ks=(1,))
    assert values["recall@1"].tolist() == [0.0]


class FixedRanker:
    def __init__(self, ranked: np.ndarray):
        self.ranked = ranked

    def rank(self, task, requests, k):
        return self.ranked[: len(requests), :k]


def test_evaluator_on_a_toy_ranking(embedded_synthetic):
    dataset = embedded_synthetic
    catalog = dataset.catalog
    first, second = catalog.ids[0], catalog.ids[1]
    requests = TaskRequests("search", "test", [EvalRequest((), "a", None, (first,)), EvalRequest((), "b", None, (second, first))])
    ranked = np.array([[catalog.position(first), catalog.position(second)], [catalog.position(first), 5]])
    result = evaluate(FixedRanker(ranked), dataset, requests, ks=(1, 2))
    assert result.requests == 2
    assert result.metrics["recall@1"] == pytest.approx((1 + 0.5) / 2)
    assert result.metrics["ndcg@1"] == pytest.approx((1 + 1) / 2)
    assert sum(group["requests"] for name, group in result.breakdown.items() if name != "cold_start") == 2


def test_popularity_groups_split_engagements_in_thirds(embedded_synthetic):
    groups = popularity_groups(embedded_synthetic)
    assert set(np.unique(groups)) <= {0, 1, 2} and (groups == 0).sum() < (groups == 2).sum()


def test_every_baseline_runs_on_the_synthetic_task(embedded_synthetic):
    dataset = embedded_synthetic
    rec, search = task_requests(dataset, "rec"), task_requests(dataset, "search")
    popularity = PopularityRanker(dataset)
    dense = DenseRanker(dataset, load_embeddings(dataset.root))
    results = {
        "popularity-rec": evaluate(popularity, dataset, rec),
        "popularity-search": evaluate(popularity, dataset, search),
        "bm25-search": evaluate(BM25Ranker(dataset), dataset, search),
        "dense-search": evaluate(dense, dataset, search),
        "dense-rec": evaluate(dense, dataset, rec),
    }
    for result in results.values():
        assert 0 <= result.metrics["recall@10"] <= result.metrics["recall@20"] <= 1
        assert "cold_start" in result.breakdown  # this dataset holds out cold-start items
    # text matching beats popularity on search; history leaves no engaged item in recommendations
    assert results["bm25-search"].metrics["recall@10"] > results["popularity-search"].metrics["recall@10"]
    assert results["dense-search"].metrics["recall@10"] > results["popularity-search"].metrics["recall@10"]
    ranked = popularity.rank("rec", rec.requests[:20], 10)
    for request, rows in zip(rec.requests[:20], ranked, strict=True):
        assert not {dataset.catalog.ids[row] for row in rows if row >= 0} & set(request.history)


def test_sasrec_trains_and_beats_popularity(embedded_synthetic):
    from unisr.config import load_config
    from unisr.evaluation.sasrec import SASRecConfig, train_sasrec

    dataset = embedded_synthetic
    ranker = train_sasrec(dataset, load_config(SASRecConfig, "sasrec", epochs=25, patience=25, learning_rate=3e-3))
    rec = task_requests(dataset, "rec")
    sasrec = evaluate(ranker, dataset, rec).metrics["ndcg@10"]
    popularity = evaluate(PopularityRanker(dataset), dataset, rec).metrics["ndcg@10"]
    assert sasrec > 2 * popularity


def test_sasrec_stops_at_its_wall_time_budget(embedded_synthetic):
    from unisr.config import load_config
    from unisr.evaluation.sasrec import SASRecConfig, train_sasrec

    tiny = {"hidden": 16, "layers": 1, "heads": 1, "val_max_requests": 50}
    unbounded = train_sasrec(embedded_synthetic, load_config(SASRecConfig, None, epochs=3, patience=3, max_minutes=0, **tiny))
    assert unbounded.epochs_trained == 3
    budget = train_sasrec(embedded_synthetic, load_config(SASRecConfig, None, epochs=500, patience=500, max_minutes=0.002, **tiny))
    assert budget.epochs_trained < 500  # 0.12 s of training, far less than 500 epochs
    assert budget.rank("rec", task_requests(embedded_synthetic, "rec").requests[:5], 10).shape == (5, 10)


def test_evaluate_cli_sasrec_config(embedded_synthetic, tmp_path):
    from unisr.cli.main import main

    tiny = tmp_path / "sasrec-tiny.yaml"
    tiny.write_text("hidden: 16\nlayers: 1\nheads: 1\nepochs: 1\npatience: 1\nval_max_requests: 50\n")
    out = tmp_path / "sasrec.json"
    args = ["evaluate", str(embedded_synthetic.root), "--baseline", "sasrec", "--tasks", "rec", "--out", str(out)]
    assert main([*args, "--sasrec-config", str(tiny)]) == 0
    assert set(json.loads(out.read_text())) == {"rec"}
    tiny.write_text("max_minutes: -1\n")
    assert main([*args, "--sasrec-config", str(tiny)]) == 2


def test_evaluate_cli(embedded_synthetic, tmp_path, capsys):
    from unisr.cli.main import main

    out = tmp_path / "metrics.json"
    assert main(["evaluate", str(embedded_synthetic.root), "--baseline", "popularity", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "rec" in printed and "search" in printed and out.is_file()
    assert main(["evaluate", str(embedded_synthetic.root), "--baseline", "oracle"]) == 2
    assert main(["evaluate", str(embedded_synthetic.root)]) == 2
    assert main(["evaluate", str(embedded_synthetic.root), "--baseline", "bm25", "-k", "x"]) == 2
    assert api.evaluate_ranker(embedded_synthetic.root, baseline="bm25").keys() == {"search"}


def test_reciprocal_rank_fusion_sums_one_over_constant_plus_rank():
    from unisr.evaluation.rankers import reciprocal_rank_fusion

    first = np.array([[3, 1, 2], [0, -1, -1]])
    second = np.array([[1, 4, -1], [5, 0, 2]])
    fused, scores = reciprocal_rank_fusion([first, second], k=3, constant=60)
    expected = {1: 1 / 62 + 1 / 61, 3: 1 / 61, 4: 1 / 62, 2: 1 / 63}  # request 0
    assert fused[0].tolist() == [1, 3, 4]  # 3 (1/61) beats 4 (1/62)
    assert np.allclose(scores[0], [expected[1], expected[3], expected[4]])
    assert fused[1].tolist() == [0, 5, 2]  # 1/61 + 1/62 beats 1/61; then 2 at 1/63
    alone, _ = reciprocal_rank_fusion([np.array([[7, 8]])], k=4)
    assert alone.tolist() == [[7, 8, -1, -1]]  # fewer candidates than k: padded with -1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"split": "train"}, "split 'train'"),
        ({"ks": (0, 10)}, "cut-offs"),
        ({"ks": ()}, "cut-offs"),
        ({"tasks": ("recs",)}, "task 'recs'"),
        ({"fuse": "bm25"}, "apply to a run"),
    ],
)
def test_evaluate_ranker_refuses_bad_arguments_in_the_api(embedded_synthetic, overrides, message):
    """The API checks what the CLI checks, so a notebook gets the same one-line errors."""
    with pytest.raises(UnisrError, match=message):
        api.evaluate_ranker(embedded_synthetic.root, baseline="popularity", **overrides)
