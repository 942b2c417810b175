"""Item text rendering and the light word normalisation used by the query protocols."""

from __future__ import annotations

import re
from collections.abc import Sequence

from unisr.data.schema import Item

DEFAULT_TEXT_FIELDS = ("title", "brand", "categories", "price")  # TIGER embedded title, price, brand, categories
FIELD_LABELS = {
    "brand": "Brand",
    "categories": "Categories",
    "price": "Price",
    "description": "Description",
    "year": "Year",
    "genres": "Genres",
}

# A compact English stop-word list (function words only; product words are kept).
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between both but by
    can did do does doing down during each few for from further had has have having he her here hers herself him himself his
    how i if in into is it its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why will with you your yours
    yourself yourselves s t""".split()
)
_WORD = re.compile(r"[a-z0-9]+(?:['.-][a-z0-9]+)*")


def render_field(name: str, value) -> str:
    """Text of one field: category paths joined with ' > ', lists with ', '."""
    if value is None:
        return ""
    if name == "categories":
        return "; ".join(" > ".join(str(level) for level in path) for path in value if path)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(part) for part in value)
    return str(value).strip()


def render_item_text(item: Item, text_fields: Sequence[str] = DEFAULT_TEXT_FIELDS) -> str:
    """The text embedded for an item, e.g. ``'Title. Brand: X. Categories: A > B. Price: 9.99'``; missing fields are skipped."""
    parts = []
    for name in text_fields:
        value = item.title if name == "title" else render_field(name, item.fields.get(name))
        if not value:
            continue
        parts.append(value if name == "title" else f"{FIELD_LABELS.get(name, name.capitalize())}: {value}")
    return ". ".join(parts)


IRREGULAR_SINGULARS = {"lenses": "lens", "series": "series", "species": "species", "news": "news", "feet": "foot", "teeth": "tooth"}


def singular(word: str) -> str:
    """A light English singulariser (accessories → accessory, phones → phone, glasses → glass)."""
    if word in IRREGULAR_SINGULARS:
        return IRREGULAR_SINGULARS[word]
    if len(word) <= 3 or not word.endswith("s") or word.endswith("ss") or word.endswith("us") or word.endswith("is"):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    return word[:-1]


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` without stop words, in order (duplicates kept)."""
    return [word for word in _WORD.findall(text.lower()) if word not in STOP_WORDS]
