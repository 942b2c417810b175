"""Probe queries: held-out query sets from a generator that no training protocol uses.

A model trained on one query generator can learn that generator's habits. A probe set measures what
carries over to queries shaped differently. ``leaf_title`` queries name a product type and one
distinguishing word, as shoppers often do ("nitrile disposable gloves", "argan shampoos"): one
title word (alphabetic, not a word of the leaf, singular or plural) followed by the words of a leaf
category. Every item whose leaf categories include that leaf and whose title holds that word is
relevant, so a query may have several relevant items.

What makes the set fair to every ranker:
- no probe text equals a training query of the dataset (the caller passes those texts);
- only needs with 1 to ``max_relevant`` items are kept (the default 10 lets Recall@10 reach 1);
- the needs are drawn uniformly at random among all (leaf, title word) pairs, not weighted by
  popularity; the first ``n_valid`` drawn are validation queries, the next ``n_test`` test queries.
Lexical rankers have an edge by construction: every query word occurs in each relevant item's text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from unisr.data.schema import Catalog, Item, Query
from unisr.data.text import content_words, singular
from unisr.errors import UnisrError

SOURCE = "probe_leaf_title"


@dataclass
class ProbeConfig:
    n_valid: int = 1000  # validation queries (to choose settings on)
    n_test: int = 2000  # test queries
    max_relevant: int = 10  # needs with more relevant items are left out
    min_word_length: int = 3  # shortest title word used (skips sizes such as "oz" and "2")
    seed: int = 0

    def __post_init__(self):
        if self.n_valid < 0 or self.n_test < 1:
            raise UnisrError(f"probe queries: need n_valid >= 0 and n_test >= 1, got {self.n_valid} and {self.n_test}")
        if self.max_relevant < 1 or self.min_word_length < 1:
            raise UnisrError(
                f"probe queries: max_relevant and min_word_length must be 1 or more, got {self.max_relevant} and {self.min_word_length}"
            )


def _leaves(item: Item) -> list[tuple[str, ...]]:
    """Content words of every leaf category of ``item`` (paths of one level have no leaf), without repeats."""
    leaves = []
    for path in item.fields.get("categories") or []:
        words = tuple(content_words(path[-1])) if len(path) >= 2 else ()
        if words and words not in leaves:
            leaves.append(words)
    return leaves


def _title_words(item: Item, min_length: int) -> set[str]:
    return {word for word in content_words(item.title) if len(word) >= min_length and word.isalpha()}


def leaf_title_needs(catalog: Catalog, min_word_length: int) -> dict[str, tuple[str, ...]]:
    """Query text → relevant item ids (catalog order) for every (leaf category, title word) pair of the catalog."""
    needs: dict[str, list[str]] = defaultdict(list)
    for item in catalog:
        words = _title_words(item, min_word_length)
        for leaf in _leaves(item):
            leaf_stems = {singular(word) for word in leaf}
            for word in sorted(word for word in words if singular(word) not in leaf_stems):
                text = " ".join((word, *leaf))
                if not needs[text] or needs[text][-1] != item.item_id:
                    needs[text].append(item.item_id)
    return {text: tuple(items) for text, items in needs.items()}


def probe_queries(catalog: Catalog, training_texts: Iterable[str], config: ProbeConfig) -> list[Query]:
    """Validation and test ``leaf_title`` queries, none equal to a text of ``training_texts``; fewer if the catalog has fewer needs."""
    taken = set(training_texts)
    needs = leaf_title_needs(catalog, config.min_word_length)
    usable = sorted(text for text, items in needs.items() if len(items) <= config.max_relevant and text not in taken)
    if not usable:
        raise UnisrError(
            f"probe queries: no (title word, leaf category) pair with 1 to {config.max_relevant} items that is not a training query "
            "(items need a category path of two levels or more and a title)"
        )
    rng = np.random.default_rng(config.seed)
    wanted = config.n_valid + config.n_test
    chosen = rng.permutation(len(usable))[:wanted]
    n_valid = config.n_valid * len(chosen) // wanted  # a small catalog keeps the valid/test proportion
    return [
        Query(f"pq{index}", usable[row], needs[usable[row]], "valid" if index < n_valid else "test", SOURCE)
        for index, row in enumerate(chosen.tolist())
    ]
