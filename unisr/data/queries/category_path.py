"""Category-path queries (Van Gysel et al. CIKM'16; Ai et al. SIGIR'17, "HEM").

An item's queries are its category paths turned into text: the terms of one path, lower-cased,
stop words removed, plural nouns singularised, and a repeated word kept only at its last
occurrence ("Camera, Photo > Digital Camera Lenses" → "photo digital camera lens"). Paths of one
level are ignored. Every (user, engaged item) pair plus one of the item's queries (drawn with a
seed) is a personalized search event whose relevant item is that engagement; its split follows
the leave-one-out split of the user's sequence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unisr.data.queries.common import leave_one_out_split
from unisr.data.schema import Catalog, Query, UserSequence
from unisr.data.text import content_words, singular

SOURCE = "category_path"


def path_query(path: Sequence[str]) -> str:
    """Query text of one category path; '' for paths of one level."""
    if len(path) < 2:
        return ""
    words = [singular(word) for word in content_words(" ".join(path))]
    last_position = {word: position for position, word in enumerate(words)}
    return " ".join(word for position, word in enumerate(words) if last_position[word] == position)


def item_category_queries(catalog: Catalog) -> dict[str, list[str]]:
    """Distinct category-path queries of every item that has at least one usable path."""
    queries: dict[str, list[str]] = {}
    for item in catalog:
        texts = []
        for path in item.fields.get("categories") or []:
            text = path_query(path)
            if text and text not in texts:
                texts.append(text)
        if texts:
            queries[item.item_id] = texts
    return queries


def category_path_queries(catalog: Catalog, sequences: Sequence[UserSequence], seed: int) -> list[Query]:
    """One personalized query per (user, engagement) whose item has a category path."""
    rng = np.random.default_rng(seed)
    per_item = item_category_queries(catalog)
    queries = []
    for sequence in sequences:
        length = len(sequence.items)
        for position, item_id in enumerate(sequence.items):
            texts = per_item.get(item_id)
            if not texts:
                continue
            text = texts[int(rng.integers(len(texts)))] if len(texts) > 1 else texts[0]
            queries.append(
                Query(f"cp{len(queries)}", text, (item_id,), leave_one_out_split(position, length), SOURCE, sequence.user_id, position)
            )
    return queries
