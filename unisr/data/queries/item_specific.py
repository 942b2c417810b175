"""Item-specific queries built from each item's own text (in the spirit of Penha et al. RecSys'25).

Penha et al. generated 20 queries per item with an LLM. Without one, unisr builds them from the
item's words:
- training queries: 2-4 title words in title order (what a shopper who knows the product types),
  plus ``n_train_mixed`` drawn the way held-out queries are (leaf-category, brand or description
  words mixed with title words): "document as query" spans in the spirit of NCI and DSI-QG, so the
  training side covers the same fields as the held-out side;
- validation and test queries: a leaf-category or description word mixed with fewer title words,
  in shuffled order (a vaguer need), never identical to any training query of any item.
Held-out queries are drawn first and mixed training queries from a separate random stream, so
``n_train_mixed`` changes neither the held-out queries nor the title training queries.
Every item gets test queries, so search has no popularity bias. What this favours: every query
shares words with its item's text, so lexical matching (BM25) is strong by construction,
especially on training-style queries; models that only read semantics lose that edge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from unisr.data.schema import Catalog, Item, Query
from unisr.data.text import content_words, render_field
from unisr.errors import UnisrError

SOURCE = "item_specific"


@dataclass
class ItemQueryConfig:
    n_train: int = 4  # training queries per item from title words
    n_train_mixed: int = 12  # further training queries per item, drawn like the held-out ones (never equal to one)
    n_valid: int = 1  # validation queries per item
    n_test: int = 2  # test queries per item
    min_words: int = 2  # words per query, at least
    max_words: int = 4  # words per query, at most
    description_words: int = 30  # how many leading description words may be drawn
    attempts: int = 20  # draws tried per query before the item gets fewer queries
    seed: int = 0

    def __post_init__(self):
        counts = {"n_train": self.n_train, "n_train_mixed": self.n_train_mixed, "n_valid": self.n_valid}
        for name, value in counts.items():
            if value < 0:
                raise UnisrError(f"item_specific.{name} must be 0 or more, got {value}")
        if self.n_test < 1 or self.attempts < 1:
            raise UnisrError(f"item_specific.n_test and .attempts must be 1 or more, got {self.n_test} and {self.attempts}")
        if not 1 <= self.min_words <= self.max_words:
            raise UnisrError(f"item_specific: need 1 <= min_words <= max_words, got {self.min_words} and {self.max_words}")


def _unique(words: list[str]) -> list[str]:
    return list(dict.fromkeys(words))


def _word_pools(item: Item, description_words: int) -> tuple[list[str], list[str]]:
    """(title words, other words: leaf categories, brand, description) without duplicates."""
    title = _unique(content_words(item.title))
    leaves = [path[-1] for path in item.fields.get("categories") or [] if path]
    other = content_words(" ".join(leaves)) + content_words(render_field("brand", item.fields.get("brand")))
    other += content_words(render_field("description", item.fields.get("description")))[:description_words]
    title_set = set(title)
    return title, [word for word in _unique(other) if word not in title_set]


def _draw(rng: np.random.Generator, pool: list[str], count: int) -> list[str]:
    picked = sorted(rng.choice(len(pool), size=min(count, len(pool)), replace=False).tolist())
    return [pool[i] for i in picked]


def _held_out_query(rng: np.random.Generator, title: list[str], other: list[str], config: ItemQueryConfig) -> str:
    length = int(rng.integers(config.min_words, config.max_words + 1))
    n_other = min(len(other), max(1, length // 2)) if other else 0
    words = _draw(rng, other, n_other) + _draw(rng, title, length - n_other) if title else _draw(rng, other, length)
    rng.shuffle(words)
    return " ".join(words)


def _train_query(rng: np.random.Generator, title: list[str], other: list[str], config: ItemQueryConfig) -> str:
    pool = title if len(title) >= config.min_words else title + other
    return " ".join(_draw(rng, pool, int(rng.integers(config.min_words, config.max_words + 1))))


QueryDraw = Callable[[np.random.Generator, list[str], list[str], ItemQueryConfig], str]


def _distinct(
    draw: QueryDraw,
    rng: np.random.Generator,
    pools: tuple[list[str], list[str]],
    config: ItemQueryConfig,
    count: int,
    avoid: tuple[set[str], ...],
) -> list[str]:
    """Up to ``count`` non-empty texts from ``draw``, none repeated nor in a set of ``avoid``; ``config.attempts`` draws per text."""
    texts: list[str] = []
    for _ in range(count):
        for _ in range(config.attempts):
            text = draw(rng, *pools, config)
            if text and text not in texts and not any(text in taken for taken in avoid):
                texts.append(text)
                break
    return texts


def item_specific_queries(catalog: Catalog, config: ItemQueryConfig) -> list[Query]:
    """Non-personalized queries for every item; test and validation texts never equal a training text."""
    rng = np.random.default_rng(config.seed)
    mixed_rng = np.random.default_rng([config.seed, 1])  # its own stream: the other queries do not depend on it
    pools = [_word_pools(item, config.description_words) for item in catalog]
    held_out: list[list[tuple[str, str]]] = []
    for pool in pools:  # held-out queries first, so training queries can avoid them
        chosen: list[tuple[str, str]] = []
        for split, count in (("test", config.n_test), ("valid", config.n_valid)):
            texts = _distinct(_held_out_query, rng, pool, config, count, ({text for _, text in chosen},))
            chosen += [(split, text) for text in texts]
        held_out.append(chosen)
    held_out_texts = {text for chosen in held_out for _, text in chosen}
    queries: list[Query] = []
    for item, pool, chosen in zip(catalog, pools, held_out, strict=True):
        train_texts = _distinct(_train_query, rng, pool, config, config.n_train, (held_out_texts,))
        train_texts += _distinct(_held_out_query, mixed_rng, pool, config, config.n_train_mixed, (held_out_texts, set(train_texts)))
        for split, text in [("train", t) for t in train_texts] + chosen:
            queries.append(Query(f"iq{len(queries)}", text, (item.item_id,), split, SOURCE))
    return queries
