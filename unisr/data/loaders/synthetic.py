"""Seeded synthetic marketplace: catalog, user sequences and a query log with realistic structure.

The default dataset of ``unisr quickstart`` and of fast tests. Items live in a three-level
category tree (Kitchen > Cookware > Frying Pans; ``synthetic_catalog.json``) with per-leaf vocabulary, so titles of a leaf
share words and titles across leaves differ; brands specialise in one or two top categories;
popularity is Zipf-like within each leaf. Users have 1-3 preferred top categories and a few
favourite brands; their next item stays in the leaf, moves to a sibling leaf or jumps to another
preferred category. A configured share of engagements is preceded by a search whose text mixes
the leaf noun (or a synonym), an attribute of the item, sometimes the brand or subcategory.

Everything is drawn from one ``numpy.random.default_rng(seed)``: the same config gives the same
``RawData``, byte for byte.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from unisr.data.loaders.synthetic_catalog import LeafVocabulary, synthetic_catalog
from unisr.data.schema import Item, QueryLogEvent, RawData, UserSequence
from unisr.errors import UnisrError

# Words some searchers add that say nothing about the item.
QUERY_FILLERS: tuple[str, ...] = ("best", "cheap", "buy", "sale", "new", "good", "quality", "deal")

# Description templates: an opening sentence and an optional second one.
_DESCRIPTION_OPENERS = (
    "{article} {adj} {noun} from {brand} with {feature}.",
    "This {adj} {noun} by {brand} features {feature}.",
    "{brand}'s {adj} {noun} combines {feature} and {feature2}.",
    "Designed by {brand}, this {adj} {noun} offers {feature}.",
)
_DESCRIPTION_CLOSERS = (
    "Part of our {sub} range, available in {variant}.",
    "Also comes with {feature3}.",
    "A reliable choice for everyday {top} needs.",
    "Available in {variant}.",
)


@dataclass
class SyntheticConfig:
    """Knobs of the synthetic marketplace; ``generate_marketplace(SyntheticConfig(**options))``."""

    seed: int = 0  # seed of the single numpy Generator every draw comes from
    n_users: int = 600  # number of users, each with one sequence
    n_items: int = 400  # catalog size before dropping items no user engaged with
    n_top_categories: int = 4  # top-level categories (at most 6), e.g. Kitchen
    n_subcategories: int = 3  # subcategories per top category (at most 3), e.g. Cookware
    n_leaf_categories: int = 3  # leaf categories per subcategory (at most 3), e.g. Frying Pans
    n_brands: int = 30  # brands (at most 48); each specialises in one or two top categories
    min_seq_len: int = 5  # shortest user sequence
    max_seq_len: int = 25  # longest user sequence; lengths are skewed towards the short end
    seq_len_skew: float = 3.0  # beta(1, skew) shape of the length distribution; larger = shorter
    p_same_leaf: float = 0.55  # chance the next item stays in the current leaf category
    p_sibling_leaf: float = 0.25  # chance the next item is in a sibling leaf (same subcategory)
    p_jump: float = 0.20  # chance the next item is in a random preferred top category
    popularity_exponent: float = 1.0  # Zipf exponent of item popularity within a leaf
    brand_affinity: float = 4.0  # weight multiplier of a user's favourite brands
    repeat_penalty: float = 0.15  # weight multiplier of items already in the user's history
    search_share: float = 0.3  # share of engagements preceded by a search (query log event)
    start_timestamp: int = 1_672_531_200  # earliest first engagement (2023-01-01 UTC), seconds
    start_spread: int = 180 * 86_400  # users start uniformly within this many seconds of the start
    mean_gap: int = 2 * 86_400  # mean seconds between a user's consecutive engagements

    def validate(self) -> None:
        """Raise ``UnisrError`` naming the first option that is out of range."""
        catalog = synthetic_catalog()
        checks = (
            ("n_users", self.n_users >= 1, "at least 1"),
            ("n_items", self.n_items >= 2, "at least 2"),
            ("n_top_categories", 1 <= self.n_top_categories <= catalog.max_top, f"between 1 and {catalog.max_top}"),
            ("n_subcategories", 1 <= self.n_subcategories <= catalog.max_sub, f"between 1 and {catalog.max_sub}"),
            ("n_leaf_categories", 1 <= self.n_leaf_categories <= catalog.max_leaf, f"between 1 and {catalog.max_leaf}"),
            ("n_brands", 1 <= self.n_brands <= len(catalog.brands), f"between 1 and {len(catalog.brands)}"),
            ("min_seq_len", self.min_seq_len >= 2, "at least 2"),
            ("max_seq_len", self.max_seq_len >= self.min_seq_len, "at least min_seq_len"),
            ("seq_len_skew", self.seq_len_skew > 0, "positive"),
            ("p_same_leaf", self.p_same_leaf >= 0, "non-negative"),
            ("p_sibling_leaf", self.p_sibling_leaf >= 0, "non-negative"),
            ("p_jump", self.p_jump >= 0, "non-negative"),
            ("p_same_leaf + p_sibling_leaf + p_jump", abs(self.p_same_leaf + self.p_sibling_leaf + self.p_jump - 1.0) < 1e-6, "equal to 1"),
            ("popularity_exponent", self.popularity_exponent >= 0, "non-negative"),
            ("brand_affinity", self.brand_affinity > 0, "positive"),
            ("repeat_penalty", 0 <= self.repeat_penalty <= 1, "between 0 and 1"),
            ("search_share", 0 <= self.search_share <= 1, "between 0 and 1"),
            ("start_spread", self.start_spread >= 0, "non-negative"),
            ("mean_gap", self.mean_gap >= 1, "at least 1 second"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise UnisrError(f"synthetic loader option {name} must be {expected}")


# Gaps between engagements are at least this long, and searches happen this many seconds before.
_MIN_GAP = 120
_QUERY_DELAY = (3, 90)


@dataclass
class _LeafCategory:
    """A leaf category of the generated marketplace: where it sits in the tree, its words, its items and related leaves."""

    top: int
    sub: int
    path: tuple[str, str, str]
    vocabulary: LeafVocabulary
    items: list[int] = dataclasses.field(default_factory=list)
    siblings: list[int] = dataclasses.field(default_factory=list)  # leaves of the same subcategory
    cousins: list[int] = dataclasses.field(default_factory=list)  # leaves of the same top category


@dataclass
class _Item:
    leaf: int
    brand: int
    adjective: str
    variant: str
    title: str
    description: str
    price: str
    popularity: float


def _pick(rng: np.random.Generator, weights) -> int:
    """Index drawn proportionally to non-negative ``weights`` (at least one positive).

    Plain Python: the lists are short (one leaf's items), where numpy's per-call overhead dominates.
    """
    target = rng.random() * float(sum(weights))
    running = 0.0
    for index, weight in enumerate(weights):
        running += weight
        if target < running:
            return index
    return max(i for i, w in enumerate(weights) if w > 0)


def _build_tree(config: SyntheticConfig) -> list[_LeafCategory]:
    leaves: list[_LeafCategory] = []
    for t, top in enumerate(synthetic_catalog().categories[: config.n_top_categories]):
        for s, sub in enumerate(top.subcategories[: config.n_subcategories]):
            leaves += [_LeafCategory(t, s, (top.name, sub.name, leaf.name), leaf) for leaf in sub.leaves[: config.n_leaf_categories]]
    return leaves


def _price(rng: np.random.Generator, low: float, high: float) -> str:
    """A log-uniform price in [low, high] with shop-like cents, as a string: "12.99"."""
    dollars = max(int(np.exp(rng.uniform(np.log(low), np.log(high)))), 1)
    cents = (0.99, 0.99, 0.49, 0.95, 0.0)[int(rng.integers(5))]
    return f"{dollars + cents:.2f}"


def _soft_lower(text: str) -> str:
    """Lower-case words except acronyms and model names (LED, USB-C, GaN, iPhone, 4K)."""
    return " ".join(w if any(c.isupper() for c in w[1:]) or any(c.isdigit() for c in w) else w.lower() for w in text.split())


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _describe(rng: np.random.Generator, leaf: _LeafCategory, brand: str, adjective: str, variant: str) -> str:
    """One or two sentences built from the leaf's features, the item's adjective and variant."""
    order = rng.permutation(len(leaf.vocabulary.features))
    adj = _soft_lower(adjective)
    values = {
        "article": _article(adj),
        "adj": adj,
        "noun": _soft_lower(leaf.vocabulary.noun),
        "brand": brand,
        "feature": leaf.vocabulary.features[int(order[0])],
        "feature2": leaf.vocabulary.features[int(order[1 % len(order)])],
        "feature3": leaf.vocabulary.features[int(order[2 % len(order)])],
        "sub": leaf.path[1].lower(),
        "variant": variant,
        "top": _soft_lower(leaf.path[0]),
    }
    text = _DESCRIPTION_OPENERS[int(rng.integers(len(_DESCRIPTION_OPENERS)))].format(**values)
    if rng.random() < 0.7:
        text += " " + _DESCRIPTION_CLOSERS[int(rng.integers(len(_DESCRIPTION_CLOSERS)))].format(**values)
    return text[0].upper() + text[1:]


def _make_items(rng: np.random.Generator, config: SyntheticConfig, leaves: list[_LeafCategory]) -> tuple[list[_Item], list[str]]:
    n_top = config.n_top_categories
    brands = list(synthetic_catalog().brands[: config.n_brands])
    # Each brand specialises in one or two top categories; brand b's first one cycles so every
    # top category has a brand whenever there are at least as many brands as top categories.
    top_order = rng.permutation(n_top)
    brand_tops: list[list[int]] = []
    for b in range(config.n_brands):
        tops = [int(top_order[b % n_top])]
        if n_top > 1 and rng.random() < 0.4:
            other = int(rng.integers(n_top - 1))
            tops.append(other + (other >= tops[0]))
        brand_tops.append(tops)
    brand_weight = rng.lognormal(0.0, 0.7, size=config.n_brands)  # some brands are bigger than others
    brands_of_top = [[b for b in range(config.n_brands) if t in brand_tops[b]] or list(range(config.n_brands)) for t in range(n_top)]

    # Items per leaf: at least one each while items last, the rest by Dirichlet shares.
    n_leaves = len(leaves)
    counts = np.zeros(n_leaves, dtype=int)
    base = min(config.n_items, n_leaves)
    counts[rng.permutation(n_leaves)[:base]] = 1
    if config.n_items > base:
        counts += rng.multinomial(config.n_items - base, rng.dirichlet(np.full(n_leaves, 4.0)))

    items: list[_Item] = []
    for index, leaf in enumerate(leaves):
        candidates = brands_of_top[leaf.top]
        weights = brand_weight[candidates]
        ranks = rng.permutation(int(counts[index]))
        used_titles: set[str] = set()
        for k in range(int(counts[index])):
            for _attempt in range(20):
                brand = candidates[_pick(rng, weights)]
                adjective = leaf.vocabulary.adjectives[int(rng.integers(len(leaf.vocabulary.adjectives)))]
                variant = leaf.vocabulary.variants[int(rng.integers(len(leaf.vocabulary.variants)))]
                title = f"{brands[brand]} {adjective} {leaf.vocabulary.noun} {variant}"
                if title not in used_titles:
                    break
            used_titles.add(title)
            description = _describe(rng, leaf, brands[brand], adjective, variant)
            price = _price(rng, *leaf.vocabulary.price_range)
            popularity = 1.0 / (int(ranks[k]) + 1) ** config.popularity_exponent
            leaf.items.append(len(items))
            items.append(_Item(index, brand, adjective, variant, title, description, price, popularity))
    return items, brands


def _link_leaves(leaves: list[_LeafCategory]) -> list[int]:
    """Fill siblings/cousins among non-empty leaves; return the non-empty leaves."""
    live = [i for i, leaf in enumerate(leaves) if leaf.items]
    for i in live:
        leaf = leaves[i]
        leaf.siblings = [j for j in live if j != i and leaves[j].top == leaf.top and leaves[j].sub == leaf.sub]
        leaf.cousins = [j for j in live if j != i and leaves[j].top == leaf.top and leaves[j].sub != leaf.sub]
    return live


def _make_sequences(
    rng: np.random.Generator, config: SyntheticConfig, leaves: list[_LeafCategory], items: list[_Item], live: list[int]
) -> tuple[list[list[int]], list[list[int]]]:
    live_tops = sorted({leaves[i].top for i in live})
    leaves_of_top = {t: [i for i in live if leaves[i].top == t] for t in live_tops}
    brands_of_top = {t: sorted({items[i].brand for j in leaves_of_top[t] for i in leaves[j].items}) for t in live_tops}
    stay, sibling = config.p_same_leaf, config.p_same_leaf + config.p_sibling_leaf

    sequences: list[list[int]] = []
    stamps: list[list[int]] = []
    for _user in range(config.n_users):
        # Tastes: 1-3 preferred top categories with Dirichlet weights, 1-3 favourite brands of them.
        n_pref = min(len(live_tops), 1 + int(rng.choice(3, p=[0.45, 0.35, 0.2])))
        prefs = [live_tops[int(i)] for i in rng.permutation(len(live_tops))[:n_pref]]
        pref_weights = rng.dirichlet(np.full(n_pref, 2.0)).tolist()
        pref_brands = sorted({b for t in prefs for b in brands_of_top[t]})
        favourites = {pref_brands[int(i)] for i in rng.permutation(len(pref_brands))[: 1 + int(rng.integers(3))]}
        weight = [item.popularity * (config.brand_affinity if item.brand in favourites else 1.0) for item in items]

        length = config.min_seq_len + int(round((config.max_seq_len - config.min_seq_len) * rng.beta(1.0, config.seq_len_skew)))
        sequence: list[int] = []
        leaf = -1
        previous = -1
        for step in range(length):
            move = rng.random() if step else 1.0  # the first item comes from a preferred category
            current = leaves[leaf] if step else None
            if current is not None and move < stay and len(current.items) > 1:
                pass  # same leaf
            elif current is not None and move < sibling and (current.siblings or current.cousins):
                related = current.siblings or current.cousins
                leaf = related[int(rng.integers(len(related)))]
            else:
                top = prefs[_pick(rng, pref_weights)]
                options = [j for j in leaves_of_top[top] if not (j == leaf and len(leaves[j].items) == 1)]
                if not options:  # a preferred category whose only item was the previous one
                    options = [j for j in live if not (j == leaf and len(leaves[j].items) == 1)] or live
                leaf = options[int(rng.integers(len(options)))]
            candidates = [i for i in leaves[leaf].items if i != previous]
            if not candidates:  # the leaf's only item was the previous one: any other item will do
                candidates = [i for i in range(len(items)) if i != previous]
            chosen = candidates[_pick(rng, [weight[i] for i in candidates])]
            weight[chosen] = max(weight[chosen] * config.repeat_penalty, 1e-12)  # repeats are rarer
            leaf = items[chosen].leaf
            previous = chosen
            sequence.append(chosen)
        start = config.start_timestamp + int(rng.integers(config.start_spread + 1))
        gaps = np.maximum(rng.exponential(config.mean_gap, size=length - 1).astype(np.int64), _MIN_GAP)
        sequences.append(sequence)
        stamps.append([start, *(start + np.cumsum(gaps)).tolist()])
    return sequences, stamps


def _cover_catalog(rng: np.random.Generator, items: list[_Item], sequences: list[list[int]]) -> None:
    """Swap engagements of repeatedly used items for unused items of the same leaf, in place.

    Items whose leaf offers no such engagement stay unused (and are dropped from the catalog).
    """
    counts = np.zeros(len(items), dtype=int)
    positions_of_leaf: dict[int, list[tuple[int, int]]] = {}
    for u, sequence in enumerate(sequences):
        for p, item in enumerate(sequence):
            counts[item] += 1
            positions_of_leaf.setdefault(items[item].leaf, []).append((u, p))
    for item in range(len(items)):
        if counts[item]:
            continue
        slots = [(u, p) for u, p in positions_of_leaf.get(items[item].leaf, []) if counts[sequences[u][p]] >= 2]
        if not slots:
            continue
        u, p = slots[int(rng.integers(len(slots)))]
        counts[sequences[u][p]] -= 1
        sequences[u][p] = item
        counts[item] = 1


def _query_text(rng: np.random.Generator, item: _Item, leaf: _LeafCategory, brand: str, style: np.ndarray) -> str:
    """2-4 lower-case words: the leaf noun or a synonym plus a few of the item's attributes."""
    p_synonym, p_brand, p_sub, p_variant = style
    noun = leaf.vocabulary.synonyms[int(rng.integers(len(leaf.vocabulary.synonyms)))] if rng.random() < p_synonym else leaf.vocabulary.noun
    # Segments (priority, words, before the noun); the lowest priorities are dropped first.
    segments: list[tuple[int, list[str], bool]] = [(9, noun.split(), True)]
    if rng.random() < 0.8:
        segments.append((6, item.adjective.split(), True))
    if rng.random() < p_brand:
        segments.append((5, brand.split(), True))
    if rng.random() < p_variant:
        segments.append((3, item.variant.split(), False))
    if rng.random() < p_sub:
        segments.append((2, leaf.path[1].split(), False))
    if rng.random() < 0.08:
        segments.append((1, [QUERY_FILLERS[int(rng.integers(len(QUERY_FILLERS)))]], True))
    while sum(len(words) for _, words, _ in segments) > 4:
        segments.remove(min(segments[1:], key=lambda segment: segment[0]))
    if sum(len(words) for _, words, _ in segments) < 2:
        pool = [a for a in leaf.vocabulary.adjectives if len(a.split()) == 1] or [leaf.path[1].split()[0]]
        segments.append((6, [pool[int(rng.integers(len(pool)))]], True))
    # Words before the noun come in a random order, usually led by the brand; the rest follow it.
    before = [segment for segment in segments[1:] if segment[2]]
    after = [segment for segment in segments[1:] if not segment[2]]
    before = [before[int(i)] for i in rng.permutation(len(before))]
    if rng.random() < 0.7:
        before.sort(key=lambda segment: segment[0] != 5)  # stable: only moves the brand to the front
    words = [w for _, ws, _ in before for w in ws] + segments[0][1] + [w for _, ws, _ in after for w in ws]
    return " ".join(words).lower()


def _make_query_log(
    rng: np.random.Generator,
    config: SyntheticConfig,
    leaves: list[_LeafCategory],
    items: list[_Item],
    brands: list[str],
    sequences: list[list[int]],
    stamps: list[list[int]],
    ids: list[str],
) -> list[QueryLogEvent]:
    events: list[tuple[int, int, QueryLogEvent]] = []
    for u, (sequence, times) in enumerate(zip(sequences, stamps, strict=True)):
        user_id = f"U{u:05d}"
        # Per-user search habits: synonym use, brand, subcategory and size/colour mentions.
        style = np.array([rng.uniform(0.1, 0.6), rng.uniform(0.05, 0.45), rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.35)])
        searched = rng.random(len(sequence)) < config.search_share
        for p in np.flatnonzero(searched).tolist():
            item = items[sequence[p]]
            text = _query_text(rng, item, leaves[item.leaf], brands[item.brand], style)
            delay = int(rng.integers(_QUERY_DELAY[0], _QUERY_DELAY[1] + 1))
            events.append((times[p] - delay, u, QueryLogEvent(text, ids[sequence[p]], user_id, times[p] - delay)))
    events.sort(key=lambda event: (event[0], event[1]))
    return [event for _, _, event in events]


def generate_marketplace(config: SyntheticConfig = SyntheticConfig()) -> RawData:
    """A deterministic synthetic marketplace: catalog, one sequence per user and a query log.

    Items are ordered by first appearance in the sequences and ids ``SYN000000`` follow that
    order; every catalog item is engaged with at least once (items no user reached are dropped).
    """
    config.validate()
    rng = np.random.default_rng(config.seed)
    leaves = _build_tree(config)
    items, brands = _make_items(rng, config, leaves)
    live = _link_leaves(leaves)
    sequences, stamps = _make_sequences(rng, config, leaves, items, live)
    _cover_catalog(rng, items, sequences)

    order: dict[int, int] = {}
    for sequence in sequences:
        for item in sequence:
            if item not in order:
                order[item] = len(order)
    ids = [""] * len(items)
    for item, row in order.items():
        ids[item] = f"SYN{row:06d}"

    catalog = []
    for item in order:  # insertion order = first appearance
        spec = items[item]
        leaf = leaves[spec.leaf]
        fields = {
            "brand": brands[spec.brand],
            "categories": [list(leaf.path)],
            "description": spec.description,
            "price": spec.price,
        }
        catalog.append(Item(ids[item], spec.title, fields))
    user_sequences = [
        UserSequence(f"U{u:05d}", tuple(ids[i] for i in sequence), tuple(int(t) for t in times))
        for u, (sequence, times) in enumerate(zip(sequences, stamps, strict=True))
    ]
    query_log = _make_query_log(rng, config, leaves, items, brands, sequences, stamps, ids)
    return RawData(catalog, user_sequences, {"loader": "synthetic", "config": dataclasses.asdict(config)}, query_log)


def load_synthetic(**options) -> RawData:
    """Loader entry point: ``options`` are SyntheticConfig fields (from a task's ``options``)."""
    known = {field.name for field in dataclasses.fields(SyntheticConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UnisrError(f"synthetic loader: unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return generate_marketplace(SyntheticConfig(**options))
