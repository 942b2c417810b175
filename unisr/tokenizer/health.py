"""Health of a set of semantic IDs: usage per level, collisions, reconstruction, alignment with the signals."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from unisr.errors import UnisrError
from unisr.tokenizer.ids import collision_tokens
from unisr.tokenizer.signals import PairSet

RANDOM_PAIRS = 10000  # random item pairs drawn as the chance baseline of the alignment


class CodebookCollapseError(UnisrError):
    """A level uses fewer codes than the configured floor."""


@dataclass
class LevelHealth:
    level: int
    codes_used: int
    perplexity: float  # exp(entropy) of the code distribution over items


@dataclass
class PairAlignment:
    pairs: int
    share_first_code: float  # share of pairs whose items share the first code
    mean_shared_prefix: float  # mean number of leading residual codes the two items share
    random_share_first_code: float  # the same for random item pairs (chance)
    random_mean_shared_prefix: float


@dataclass
class QueryAlignment:
    queries: int
    share_first_code: float  # share of query-item pairs where the item's first code = the query latent's first code
    chance: float  # the same if first codes were independent: sum over codes of p(code)^2


@dataclass
class HealthReport:
    items: int
    levels: list[LevelHealth]
    collision_rate: float  # share of items whose residual codes are shared with another item (before the collision token)
    max_collision_token: int
    mean_collision_token: float
    reconstruction_mse: float  # on standardised embeddings
    co_engagement: PairAlignment | None
    search: QueryAlignment | None

    def to_dict(self) -> dict:
        return asdict(self)


def level_health(codes: np.ndarray) -> list[LevelHealth]:
    result = []
    for level in range(codes.shape[1]):
        _, counts = np.unique(codes[:, level], return_counts=True)
        probability = counts / counts.sum()
        result.append(LevelHealth(level, len(counts), float(np.exp(-(probability * np.log(probability)).sum()))))
    return result


def shared_prefix(codes: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Number of leading codes rows ``left`` and ``right`` share (vectorized)."""
    equal = codes[left] == codes[right]
    return np.cumprod(equal, axis=1).sum(axis=1)


def pair_alignment(codes: np.ndarray, pairs: PairSet, seed: int) -> PairAlignment | None:
    if len(pairs) == 0 or len(codes) < 2:
        return None
    rng = np.random.default_rng(seed)
    random_left = rng.integers(len(codes), size=RANDOM_PAIRS)
    random_right = (random_left + rng.integers(1, len(codes), size=RANDOM_PAIRS)) % len(codes)
    observed = shared_prefix(codes, pairs.left, pairs.right)
    chance = shared_prefix(codes, random_left, random_right)
    return PairAlignment(len(pairs), float((observed > 0).mean()), float(observed.mean()), float((chance > 0).mean()), float(chance.mean()))


def query_alignment(item_codes: np.ndarray, query_first_codes: np.ndarray, pairs: PairSet) -> QueryAlignment | None:
    """``query_first_codes[row]`` is the first code of query text ``row``'s quantized latent."""
    if len(pairs) == 0:
        return None
    first = item_codes[:, 0]
    _, counts = np.unique(first, return_counts=True)
    probability = counts / counts.sum()
    hits = query_first_codes[pairs.left] == first[pairs.right]
    return QueryAlignment(len(pairs), float(hits.mean()), float((probability**2).sum()))


def health_report(
    codes: np.ndarray,
    reconstruction_mse: float,
    valid_transitions: PairSet,
    valid_queries: PairSet,
    query_first_codes: np.ndarray,
    seed: int,
) -> HealthReport:
    """The report for residual ``codes`` [n, L] of the coded items (collision tokens derived here)."""
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    group_size = counts[inverse.reshape(-1)]
    tokens = collision_tokens(codes)
    return HealthReport(
        items=len(codes),
        levels=level_health(codes),
        collision_rate=float((group_size > 1).mean()),
        max_collision_token=int(tokens.max(initial=0)),
        mean_collision_token=float(tokens.mean()) if len(tokens) else 0.0,
        reconstruction_mse=float(reconstruction_mse),
        co_engagement=pair_alignment(codes, valid_transitions, seed),
        search=query_alignment(codes, query_first_codes, valid_queries),
    )


def check_collapse(levels: list[LevelHealth], codebook_size: int, items: int, floor: float) -> None:
    """Raise when a level uses fewer than ``floor`` × min(codebook size, items) codes."""
    needed = max(2, int(np.ceil(floor * min(codebook_size, items))))
    for level in levels:
        if level.codes_used < needed and items >= 2:
            raise CodebookCollapseError(
                f"codebook level {level.level} collapsed: {level.codes_used} of {codebook_size} codes used by {items} items "
                f"(floor {needed}; check that the embeddings differ, lower the learning rate, or lower min_code_usage)"
            )


def format_health(report: HealthReport) -> str:
    rows = [f"items {report.items:,}   reconstruction MSE {report.reconstruction_mse:.4f}"]
    rows.append("level  codes used  perplexity")
    rows += [f"{level.level:>5}  {level.codes_used:>10}  {level.perplexity:>10.1f}" for level in report.levels]
    rows.append(
        f"collisions before the extra token: {report.collision_rate:.1%} of items; "
        f"extra token max {report.max_collision_token}, mean {report.mean_collision_token:.3f}"
    )
    if report.co_engagement:
        c = report.co_engagement
        rows.append(
            f"co-engaged validation pairs ({c.pairs:,}): same first code {c.share_first_code:.1%} "
            f"(random {c.random_share_first_code:.1%}), "
            f"shared prefix {c.mean_shared_prefix:.2f} (random {c.random_mean_shared_prefix:.2f})"
        )
    if report.search:
        s = report.search
        rows.append(
            f"validation queries ({s.queries:,}): item's first code = query's first code {s.share_first_code:.1%} (chance {s.chance:.1%})"
        )
    return "\n".join(rows)


def report_from_dict(values: dict) -> HealthReport:
    """Rebuild a report from its JSON form (health.json)."""
    return HealthReport(
        items=values["items"],
        levels=[LevelHealth(**level) for level in values["levels"]],
        collision_rate=values["collision_rate"],
        max_collision_token=values["max_collision_token"],
        mean_collision_token=values["mean_collision_token"],
        reconstruction_mse=values["reconstruction_mse"],
        co_engagement=PairAlignment(**values["co_engagement"]) if values.get("co_engagement") else None,
        search=QueryAlignment(**values["search"]) if values.get("search") else None,
    )


def format_health_table(reports: dict[str, HealthReport]) -> str:
    """Several reports side by side, one row per scheme."""
    header = (
        f"{'scheme':<10} {'codes used per level':<22} {'collisions':>10} {'recon MSE':>9} {'co-eng. 1st code':>16} {'query 1st code':>14}"
    )
    rows = [header, "-" * len(header)]
    for name, report in reports.items():
        used = "/".join(str(level.codes_used) for level in report.levels)
        co = (
            f"{report.co_engagement.share_first_code:.1%} ({report.co_engagement.random_share_first_code:.0%})"
            if report.co_engagement
            else "-"
        )
        query = f"{report.search.share_first_code:.1%} ({report.search.chance:.0%})" if report.search else "-"
        rows.append(f"{name:<10} {used:<22} {report.collision_rate:>10.1%} {report.reconstruction_mse:>9.4f} {co:>16} {query:>14}")
    rows.append("(co-eng. 1st code: validation transitions whose two items share the first code, random pairs in brackets;")
    rows.append(" query 1st code: validation queries whose quantized latent starts with the item's first code, chance in brackets)")
    return "\n".join(rows)
