"""MovieLens: RecBole atomic files (``.inter``/``.item``) and the GroupLens ``u.data``/``u.item`` files."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from unisr.data.loaders.common import (
    MALFORMED_FIX,
    build_catalog,
    group_sequences,
    numbered_lines,
    parse_timestamp,
    require_id,
    require_listed,
    source_record,
    text_value,
)
from unisr.data.schema import Item, RawData
from unisr.errors import InputFileError
from unisr.io import require_file

ATOMIC_LOADER = "movielens"
GROUPLENS_LOADER = "movielens_grouplens"
CATEGORY_ROOT = "Movies"
# Atomic column names (the part of the header before ":"); alternatives cover RecBole's other MovieLens files.
USER_COLUMN, ITEM_COLUMN, TIME_COLUMN = "user_id", "item_id", "timestamp"
TITLE_COLUMNS = ("movie_title", "title")
YEAR_COLUMNS = ("release_year", "year")
GENRE_COLUMNS = ("class", "genre", "genres")
ATOMIC_SEPARATOR = "\t"
# GroupLens u.data / u.item layout.
GROUPLENS_RATING_SEPARATOR = "\t"
GROUPLENS_RATING_COLUMNS = ("user", "item", "rating", "timestamp")
GROUPLENS_ITEM_SEPARATOR = "|"
GROUPLENS_ITEM_ENCODING = "latin-1"
GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
GROUPLENS_ITEM_HEAD = ("id", "title", "release date", "video release date", "IMDb URL")
TITLE_WITH_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*$")
TRAILING_YEAR = re.compile(r"(?P<year>\d{4})\s*$")


def load_movielens_atomic(interactions: Path, items: Path) -> RawData:
    """Load RecBole atomic files: ``.inter`` (user_id, item_id, timestamp) and ``.item`` (item_id, movie_title, ...)."""
    interactions, items = Path(interactions), Path(items)
    require_file(interactions, "interaction file", "pass the RecBole .inter file")
    require_file(items, "item file", "pass the RecBole .item file")
    triples = _read_atomic_interactions(interactions)
    known = _read_atomic_items(items)
    return _finish(ATOMIC_LOADER, triples, known, {"interactions": interactions, "items": items})


def load_movielens_grouplens(ratings: Path, items: Path) -> RawData:
    """Load GroupLens ``u.data`` (user, item, rating, timestamp) and ``u.item`` (pipe-separated, latin-1)."""
    ratings, items = Path(ratings), Path(items)
    require_file(ratings, "ratings file", "pass u.data (tab-separated: user item rating timestamp)")
    require_file(items, "item file", "pass u.item (pipe-separated)")
    triples = []
    for number, values in _split_rows(numbered_lines(ratings), ratings, GROUPLENS_RATING_SEPARATOR, len(GROUPLENS_RATING_COLUMNS)):
        user, item, _rating, stamp = values
        triples.append(
            (
                number,
                require_id(user, "user", ratings, number),
                require_id(item, "item", ratings, number),
                parse_timestamp(stamp, ratings, number),
            )
        )
    known = _read_grouplens_items(items)
    return _finish(GROUPLENS_LOADER, triples, known, {"ratings": ratings, "items": items})


def _finish(loader: str, triples: list[tuple[int, str, str, int]], known: dict[str, Item], files: dict[str, Path]) -> RawData:
    """Check every item is listed, group the (line, user, item, time) rows into sequences and build the catalog."""
    interactions, items = files.values()
    require_listed(((number, item) for number, _user, item, _time in triples), known, interactions, items)
    sequences = group_sequences([row[1] for row in triples], [row[2] for row in triples], [row[3] for row in triples])
    return RawData(build_catalog(sequences, known), sequences, source_record(loader, files))


def _split_rows(lines: Iterator[tuple[int, str]], path: Path, separator: str, width: int) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, values) of every non-blank line, which must have exactly ``width`` values."""
    for number, line in lines:
        if not line.strip():
            continue
        values = line.split(separator)
        if len(values) != width:
            raise InputFileError(path, f"expected {width} {separator!r}-separated columns, got {len(values)}", MALFORMED_FIX, number)
        yield number, values


def _atomic_rows(path: Path, required: Sequence[str]) -> tuple[dict[str, int], Iterator[tuple[int, list[str]]]]:
    """Read the typed header (``name:type``) and return column positions by name plus the data rows."""
    lines = numbered_lines(path)
    header = next(((number, line) for number, line in lines if line.strip()), None)
    if header is None:
        raise InputFileError(path, "empty file", "expected a typed header such as 'item_id:token'")
    names = [column.split(":", 1)[0].strip() for column in header[1].split(ATOMIC_SEPARATOR)]
    columns = {name: position for position, name in enumerate(names)}
    if missing := [name for name in required if name not in columns]:
        raise InputFileError(
            path, f"header lacks column {', '.join(missing)} (found {', '.join(names)})", "name columns like 'item_id:token'", header[0]
        )
    return columns, _split_rows(lines, path, ATOMIC_SEPARATOR, len(names))


def _read_atomic_interactions(path: Path) -> list[tuple[int, str, str, int]]:
    """Parse (line, user, item, timestamp) rows of an atomic ``.inter`` file by header name."""
    columns, rows = _atomic_rows(path, (USER_COLUMN, ITEM_COLUMN, TIME_COLUMN))
    user, item, stamp = (columns[name] for name in (USER_COLUMN, ITEM_COLUMN, TIME_COLUMN))
    return [
        (
            number,
            require_id(row[user], USER_COLUMN, path, number),
            require_id(row[item], ITEM_COLUMN, path, number),
            parse_timestamp(row[stamp], path, number),
        )
        for number, row in rows
    ]


def _first_column(columns: dict[str, int], names: Sequence[str]) -> int | None:
    """Position of the first of ``names`` present in the header, else None."""
    return next((columns[name] for name in names if name in columns), None)


def _read_atomic_items(path: Path) -> dict[str, Item]:
    """Parse the atomic item file: title, year and space-separated genres by header name."""
    columns, rows = _atomic_rows(path, (ITEM_COLUMN,))
    title, year, genres = (_first_column(columns, names) for names in (TITLE_COLUMNS, YEAR_COLUMNS, GENRE_COLUMNS))
    known: dict[str, Item] = {}
    for number, row in rows:
        item_id = require_id(row[columns[ITEM_COLUMN]], ITEM_COLUMN, path, number)
        _check_new(item_id, known, path, number)
        known[item_id] = Item(
            item_id,
            text_value(row[title]) if title is not None else "",
            _movie_fields(row[year] if year is not None else "", row[genres].split() if genres is not None else []),
        )
    return known


def _read_grouplens_items(path: Path) -> dict[str, Item]:
    """Parse ``u.item``: id|title (year)|release date|video release date|IMDb URL|19 genre flags."""
    known: dict[str, Item] = {}
    lines = numbered_lines(path, GROUPLENS_ITEM_ENCODING)
    for number, values in _split_rows(lines, path, GROUPLENS_ITEM_SEPARATOR, len(GROUPLENS_ITEM_HEAD) + len(GENRES)):
        item_id = require_id(values[0], "movie id", path, number)
        _check_new(item_id, known, path, number)
        flags = values[len(GROUPLENS_ITEM_HEAD) :]
        if any(flag.strip() not in ("0", "1") for flag in flags):
            raise InputFileError(path, "genre flags must be 0 or 1", MALFORMED_FIX, number)
        title, year = _split_title(values[1], values[2])
        known[item_id] = Item(
            item_id, title, _movie_fields(year, [genre for genre, flag in zip(GENRES, flags, strict=True) if flag.strip() == "1"])
        )
    return known


def _check_new(item_id: str, known: dict[str, Item], path: Path, number: int) -> None:
    """Raise if ``item_id`` was already read from the item file."""
    if item_id in known:
        raise InputFileError(path, f"duplicate item {item_id!r}", "keep one line per item", number)


def _split_title(raw_title: str, release_date: str) -> tuple[str, str]:
    """Split "Toy Story (1995)" into title and year; without one, take the year from the release date."""
    if match := TITLE_WITH_YEAR.match(raw_title.strip()):
        return match["title"], match["year"]
    date_year = TRAILING_YEAR.search(release_date)
    return raw_title.strip(), date_year["year"] if date_year else ""


def _movie_fields(year: str, genres: list[str]) -> dict[str, Any]:
    """Year (only a number, not a placeholder such as "unknown") and genres, also as Movies > genre categories."""
    fields: dict[str, Any] = {}
    if year.strip().isdigit():
        fields["year"] = year.strip()
    if genres:
        fields["genres"] = genres
        fields["categories"] = [[CATEGORY_ROOT, genre] for genre in genres]
    return fields
