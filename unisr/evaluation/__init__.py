"""Per-task evaluation: one request contract for both tasks, full-ranking metrics, baselines."""

from unisr.evaluation.evaluator import POPULARITY_GROUPS, Ranker, TaskResult, evaluate, evaluate_tasks, popularity_groups
from unisr.evaluation.metrics import DEFAULT_KS, per_request_metrics, top_k_from_scores
from unisr.evaluation.rankers import BM25Ranker, DenseRanker, GenerativeRanker, PopularityRanker
from unisr.evaluation.requests import TASKS, EvalRequest, TaskRequests, task_requests

__all__ = [
    "DEFAULT_KS",
    "POPULARITY_GROUPS",
    "TASKS",
    "BM25Ranker",
    "DenseRanker",
    "EvalRequest",
    "GenerativeRanker",
    "PopularityRanker",
    "Ranker",
    "TaskRequests",
    "TaskResult",
    "evaluate",
    "evaluate_tasks",
    "per_request_metrics",
    "popularity_groups",
    "task_requests",
    "top_k_from_scores",
]
