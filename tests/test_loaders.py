"""Loaders: tiny fixtures for every format and bad input, plus the published counts of the real datasets."""

from __future__ import annotations

import gzip
import json
import re
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from unisr.data.loaders import LOADERS, load_source
from unisr.data.loaders.amazon2014 import load_amazon2014_dumps, load_amazon2014_processed
from unisr.data.loaders.amazon2018 import load_lcrec
from unisr.data.loaders.movielens import GENRES, load_movielens_atomic, load_movielens_grouplens
from unisr.data.schema import RawData
from unisr.errors import InputFileError, UnisrError
from unisr.io import sha256_file


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


def write_gz(path: Path, text: str) -> Path:
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(text)
    return path


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def raises_at(path: Path, line: int | None = None) -> AbstractContextManager:
    """Expect an InputFileError whose message starts with ``path`` (and ``path:line`` when given)."""
    where = f"{path}:{line}" if line is not None else str(path)
    return pytest.raises(InputFileError, match=f"^{re.escape(where)}:")


def counts(raw: RawData) -> tuple[int, int, int]:
    return len(raw.sequences), len(raw.items), sum(len(sequence.items) for sequence in raw.sequences)


# ---------------------------------------------------------------- amazon2014 processed

BEAUTY_ITEMS = (
    {"asin": "A1", "title": "OPI Red", "categories": [["Beauty", "Makeup", "Nails"]], "brand_group": 3},
    {"asin": "A2", "title": "Face Cream", "categories": [["Beauty", "Skin Care"]], "brand_group": None},
    {"asin": "A3", "title": "Shampoo", "categories": [], "brand_group": 0},
    {"asin": "UNUSED", "title": "Never bought", "categories": [["Beauty"]], "brand_group": 1},
)


@pytest.fixture
def beauty(tmp_path: Path) -> tuple[Path, Path]:
    sequences = write(tmp_path / "user_sequence.txt", "U1 A2 A1 A3\n\nU2 A1 A2\n")
    items = write(tmp_path / "item_text.jsonl", jsonl(*BEAUTY_ITEMS))
    return sequences, items


def test_amazon2014_processed_reads_sequences_items_and_source(beauty):
    sequences, items = beauty
    raw = load_amazon2014_processed(sequences, items)
    assert [(s.user_id, s.items, s.timestamps) for s in raw.sequences] == [("U1", ("A2", "A1", "A3"), None), ("U2", ("A1", "A2"), None)]
    assert [item.item_id for item in raw.items] == ["A2", "A1", "A3"]  # first appearance; UNUSED is dropped
    by_id = {item.item_id: item for item in raw.items}
    assert by_id["A1"].title == "OPI Red" and by_id["A1"].text == ""
    assert by_id["A1"].fields == {"categories": [["Beauty", "Makeup", "Nails"]], "brand_group": 3}
    assert by_id["A2"].fields == {"categories": [["Beauty", "Skin Care"]]}  # null brand_group is left out
    assert by_id["A3"].fields == {"brand_group": 0}
    assert raw.source == {
        "loader": "amazon2014",
        "files": {
            "sequences": {"path": str(sequences), "sha256": sha256_file(sequences)},
            "items": {"path": str(items), "sha256": sha256_file(items)},
        },
    }


def test_amazon2014_processed_bad_input(beauty, tmp_path):
    sequences, items = beauty
    with raises_at(tmp_path / "missing.txt"):
        load_amazon2014_processed(tmp_path / "missing.txt", items)
    lonely = write(tmp_path / "lonely.txt", "U1 A1\nU2\n")
    with raises_at(lonely, 2):
        load_amazon2014_processed(lonely, items)
    twice = write(tmp_path / "twice.txt", "U1 A1\nU2 A2\nU1 A3\n")
    with raises_at(twice, 3):
        load_amazon2014_processed(twice, items)
    duplicate = write(tmp_path / "duplicate.jsonl", jsonl(BEAUTY_ITEMS[0], BEAUTY_ITEMS[1], BEAUTY_ITEMS[0]))
    with raises_at(duplicate, 3):
        load_amazon2014_processed(sequences, duplicate)
    broken = write(tmp_path / "broken.jsonl", jsonl(BEAUTY_ITEMS[0]) + "{not json\n")
    with raises_at(broken, 2):
        load_amazon2014_processed(sequences, broken)
    bad_group = write(tmp_path / "bad_group.jsonl", jsonl({"asin": "A1", "title": "x", "brand_group": "three"}))
    with raises_at(bad_group, 1):
        load_amazon2014_processed(sequences, bad_group)
    unlisted = write(tmp_path / "unlisted.txt", "U1 A1\nU2 A1 NOPE\n")
    with raises_at(unlisted, 2) as error:
        load_amazon2014_processed(unlisted, items)
    assert "NOPE" in str(error.value) and items.name in str(error.value)


# ---------------------------------------------------------------- amazon2014 dumps


def review(user: str, item: str, time: int) -> dict:
    return {"reviewerID": user, "asin": item, "reviewText": "ok", "overall": 5.0, "unixReviewTime": time}


def dump_reviews() -> list[dict]:
    """U1..U5 review A..E (a 5-core); U6 reviews A..D and F; F also gets U1..U3; U1 also reviews G.

    Round 1 drops F (4 reviews) and G (1); round 2 drops U6 (down to 4); then A..E x U1..U5 is stable.
    U1 reviews C then B at the same time, so C must stay before B.
    """
    records = [review("U1", "A", 100), review("U1", "C", 200), review("U1", "B", 200), review("U1", "D", 300), review("U1", "E", 50)]
    records += [review(user, item, 10 * rank) for user in ("U2", "U3", "U4", "U5") for rank, item in enumerate("ABCDE")]
    records += [review("U6", item, 1000 + rank) for rank, item in enumerate("ABCDF")]
    records += [review(user, "F", 5000) for user in ("U1", "U2", "U3")] + [review("U1", "G", 7)]
    return records


META_LINES = (
    "{'asin': 'A', 'title': 'Nail &amp; Cuticle Oil', 'price': 12.99, 'brand': 'OPI', "
    "'categories': [['Beauty', 'Makeup', 'Nails']], 'description': ['Strong', 'and shiny'], 'salesRank': {'Beauty': 3}}\n"
    '{"asin": "B", "title": "Face Cream", "categories": [["Beauty", "Skin Care"]], "description": "Rich."}\n'
    "{'asin': 'C', 'title': \"Kiehl's Toner\", 'brand': ''}\n"
    "{'asin': 'D'}\n"
    "{'asin': 'F', 'title': 'Filtered away'}\n"
)


@pytest.fixture
def dumps(tmp_path: Path) -> tuple[Path, Path]:
    reviews = write_gz(tmp_path / "reviews_Beauty_5.json.gz", jsonl(*dump_reviews()))
    meta = write_gz(tmp_path / "meta_Beauty.json.gz", META_LINES)  # E has no metadata
    return reviews, meta


def test_amazon2014_dumps_filters_iteratively_and_sorts_stably(dumps):
    reviews, meta = dumps
    raw = load_amazon2014_dumps(reviews, meta)
    assert [s.user_id for s in raw.sequences] == ["U1", "U2", "U3", "U4", "U5"]  # U6 only falls below 5 after F goes
    first = raw.sequences[0]
    assert first.items == ("E", "A", "C", "B", "D") and first.timestamps == (50, 100, 200, 200, 300)
    assert all(s.items == tuple("ABCDE") for s in raw.sequences[1:])
    assert [item.item_id for item in raw.items] == ["E", "A", "C", "B", "D"]
    by_id = {item.item_id: item for item in raw.items}
    assert by_id["A"].title == "Nail & Cuticle Oil"
    assert by_id["A"].fields == {
        "brand": "OPI",
        "description": "Strong and shiny",
        "categories": [["Beauty", "Makeup", "Nails"]],
        "price": "12.99",
    }
    assert by_id["B"].fields == {"description": "Rich.", "categories": [["Beauty", "Skin Care"]]}
    assert (by_id["C"].title, by_id["C"].fields) == ("Kiehl's Toner", {})
    assert (by_id["E"].title, by_id["E"].fields) == ("", {})  # absent from meta
    assert raw.source["loader"] == "amazon2014_dumps" and raw.source["options"] == {"min_count": 5}
    assert raw.source["files"]["reviews"] == {"path": str(reviews), "sha256": sha256_file(reviews)}


def test_amazon2014_dumps_accepts_plain_files_and_other_min_count(dumps, tmp_path):
    reviews = write(tmp_path / "reviews.json", gzip.decompress(dumps[0].read_bytes()).decode())
    meta = write(tmp_path / "meta.json", META_LINES)
    assert counts(load_amazon2014_dumps(reviews, meta)) == (5, 5, 25)
    assert counts(load_amazon2014_dumps(reviews, meta, min_count=1)) == (6, 7, 34)


def test_amazon2014_dumps_bad_input(dumps, tmp_path):
    reviews, meta = dumps
    with raises_at(tmp_path / "nowhere.json.gz"):
        load_amazon2014_dumps(tmp_path / "nowhere.json.gz", meta)
    lines = jsonl(*dump_reviews()).splitlines(keepends=True)
    broken = write_gz(tmp_path / "broken.json.gz", "".join(lines[:2]) + "{'reviewerID': 'U1'}\n")  # reviews must be JSON
    with raises_at(broken, 3):
        load_amazon2014_dumps(broken, meta)
    late = write(tmp_path / "late.json", lines[0] + json.dumps(review("U1", "A", 0) | {"unixReviewTime": "soon"}) + "\n")
    with raises_at(late, 2):
        load_amazon2014_dumps(late, meta)
    bad_meta = write_gz(tmp_path / "bad_meta.json.gz", META_LINES + "{'asin': 'X', 'title': __import__('os')}\n")
    with raises_at(bad_meta, 6):
        load_amazon2014_dumps(reviews, bad_meta)
    twice = write(tmp_path / "twice.json", META_LINES + "{'asin': 'B'}\n")
    with raises_at(twice, 6):
        load_amazon2014_dumps(reviews, twice)
    with pytest.raises(UnisrError, match="min_count"):
        load_amazon2014_dumps(reviews, meta, min_count=0)


# ---------------------------------------------------------------- LC-Rec (Amazon 2018)

LCREC_ITEMS = {
    "0": {
        "title": "Capacitor",
        "description": "500% torque.",
        "brand": "Supco",
        "categories": "Industrial & Scientific,Passive Components,Capacitors",
    },
    "1": {
        "title": "Tape",
        "description": "",
        "brand": "3M",
        "categories": "Industrial & Scientific,Tapes, Adhesives & Sealants,Adhesive Tapes",
    },
    "2": {"title": "Gloves", "description": ["Nitrile", "gloves"], "brand": "", "categories": ""},
    "9": {"title": "Unused", "description": "", "brand": "", "categories": ""},
}


@pytest.fixture
def lcrec(tmp_path: Path) -> tuple[Path, Path]:
    interactions = write(tmp_path / "Sci.inter.json", json.dumps({"0": [1, 0, 2], "1": [2, 1]}))
    items = write(tmp_path / "Sci.item.json", json.dumps(LCREC_ITEMS, indent=2))
    return interactions, items


def test_lcrec_reads_sequences_and_item_fields(lcrec):
    raw = load_lcrec(*lcrec)
    assert [(s.user_id, s.items, s.timestamps) for s in raw.sequences] == [("0", ("1", "0", "2"), None), ("1", ("2", "1"), None)]
    assert [item.item_id for item in raw.items] == ["1", "0", "2"]
    by_id = {item.item_id: item for item in raw.items}
    assert by_id["0"].fields == {
        "brand": "Supco",
        "description": "500% torque.",
        "categories": [["Industrial & Scientific", "Passive Components", "Capacitors"]],
    }
    # "Tapes, Adhesives & Sealants" is one category name: only a comma without a following space separates levels
    assert by_id["1"].fields == {
        "brand": "3M",
        "categories": [["Industrial & Scientific", "Tapes, Adhesives & Sealants", "Adhesive Tapes"]],
    }
    assert (by_id["2"].title, by_id["2"].fields) == ("Gloves", {"description": "Nitrile gloves"})
    assert raw.source["loader"] == "lcrec" and set(raw.source["files"]) == {"interactions", "items"}


def test_lcrec_bad_input(lcrec, tmp_path):
    interactions, items = lcrec
    with raises_at(tmp_path / "none.inter.json"):
        load_lcrec(tmp_path / "none.inter.json", items)
    broken = write(tmp_path / "broken.inter.json", '{\n  "0": [1, 2],\n  "1": [3,\n}\n')
    with raises_at(broken, 4):
        load_lcrec(broken, items)
    twice = write(tmp_path / "twice.inter.json", '{"0": [1], "1": [2], "0": [0]}')
    with raises_at(twice) as error:
        load_lcrec(twice, items)
    assert "duplicate user id '0'" in str(error.value)
    dup_items = write(tmp_path / "dup.item.json", '{"0": {"title": "a"}, "1": {"title": "b"}, "2": {"title": "c"}, "1": {"title": "d"}}')
    with raises_at(dup_items) as error:
        load_lcrec(interactions, dup_items)
    assert "duplicate item id '1'" in str(error.value)
    unlisted = write(tmp_path / "unlisted.inter.json", '{"0": [1, 0], "1": [7]}')
    with raises_at(unlisted) as error:
        load_lcrec(unlisted, items)
    assert "'7'" in str(error.value) and items.name in str(error.value)
    not_list = write(tmp_path / "not_list.inter.json", '{"0": 1}')
    with raises_at(not_list):
        load_lcrec(not_list, items)


# ---------------------------------------------------------------- MovieLens


@pytest.fixture
def atomic(tmp_path: Path) -> tuple[Path, Path]:
    # columns deliberately not in RecBole's order: loaders find them by header name
    interactions = write(
        tmp_path / "ml.inter",
        "timestamp:float\titem_id:token\tuser_id:token\trating:float\n"
        "300\t10\t7\t4\n100\t20\t7\t3\n300\t30\t7\t5\n50\t20\t8\t1\n881250949.0\t10\t8\t2\n",
    )
    items = write(
        tmp_path / "ml.item",
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "10\tToy Story\t1995\tAnimation Children's Comedy\n20\tCérémonie, La\t1995\tDrama\n"
        "30\tunkonwn\tunkonwn\tunknown\n40\tUnused\t1990\t\n",
    )
    return interactions, items


def test_movielens_atomic_reads_by_header_name_with_stable_ties(atomic):
    raw = load_movielens_atomic(*atomic)
    assert [(s.user_id, s.items, s.timestamps) for s in raw.sequences] == [
        ("7", ("20", "10", "30"), (100, 300, 300)),  # 10 and 30 tie at 300: file order
        ("8", ("20", "10"), (50, 881250949)),
    ]
    assert [item.item_id for item in raw.items] == ["20", "10", "30"]
    by_id = {item.item_id: item for item in raw.items}
    assert by_id["10"].title == "Toy Story"
    assert by_id["10"].fields == {
        "year": "1995",
        "genres": ["Animation", "Children's", "Comedy"],
        "categories": [["Movies", "Animation"], ["Movies", "Children's"], ["Movies", "Comedy"]],
    }
    assert by_id["20"].title == "Cérémonie, La"
    assert by_id["30"].fields == {"genres": ["unknown"], "categories": [["Movies", "unknown"]]}  # placeholder year dropped
    assert raw.source["loader"] == "movielens" and set(raw.source["files"]) == {"interactions", "items"}


def test_movielens_atomic_bad_input(atomic, tmp_path):
    interactions, items = atomic
    header = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    with raises_at(tmp_path / "none.inter"):
        load_movielens_atomic(tmp_path / "none.inter", items)
    short = write(tmp_path / "short.inter", header + "7\t10\t4\t1\n7\t20\t4\n")
    with raises_at(short, 3):
        load_movielens_atomic(short, items)
    fractional = write(tmp_path / "fractional.inter", header + "7\t10\t4\t1.5\n")
    with raises_at(fractional, 2):
        load_movielens_atomic(fractional, items)
    no_time = write(tmp_path / "no_time.inter", "user_id:token\titem_id:token\n7\t10\n")
    with raises_at(no_time, 1) as error:
        load_movielens_atomic(no_time, items)
    assert "timestamp" in str(error.value)
    item_header = "item_id:token\tmovie_title:token_seq\n"
    twice = write(tmp_path / "twice.item", item_header + "10\tA\n20\tB\n10\tC\n")
    with raises_at(twice, 4):
        load_movielens_atomic(interactions, twice)
    partial = write(tmp_path / "partial.item", item_header + "10\tA\n20\tB\n")
    with raises_at(interactions, 4) as error:  # item 30 first appears on line 4
        load_movielens_atomic(interactions, partial)
    assert "'30'" in str(error.value) and partial.name in str(error.value)


def grouplens_item(item_id: int, title: str, date: str, genres: set[str]) -> str:
    flags = "|".join("1" if genre in genres else "0" for genre in GENRES)
    return f"{item_id}|{title}|{date}||http://us.imdb.com/x|{flags}\n"


@pytest.fixture
def grouplens(tmp_path: Path) -> tuple[Path, Path]:
    ratings = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t4\t881250949\n196\t1\t5\t800000000\n")
    items = write(
        tmp_path / "u.item",
        grouplens_item(1, "Toy Story (1995)", "01-Jan-1995", {"Animation", "Children's", "Comedy"})
        + grouplens_item(242, "Kolya (1996)", "24-Jan-1997", {"Comedy"})
        + grouplens_item(302, "Cérémonie, La (1995)", "20-Dec-1996", {"Drama"})
        + grouplens_item(267, "unknown", "", {"unknown"}),
        encoding="latin-1",
    )
    return ratings, items


def test_movielens_grouplens_reads_latin1_titles_years_and_flags(grouplens):
    raw = load_movielens_grouplens(*grouplens)
    assert [(s.user_id, s.items, s.timestamps) for s in raw.sequences] == [
        ("196", ("1", "242", "302"), (800000000, 881250949, 881250949)),
        ("186", ("302",), (891717742,)),
    ]
    by_id = {item.item_id: item for item in raw.items}
    assert list(by_id) == ["1", "242", "302"]
    assert (by_id["302"].title, by_id["302"].fields["year"]) == ("Cérémonie, La", "1995")
    assert by_id["1"].fields["genres"] == ["Animation", "Children's", "Comedy"]
    assert by_id["242"].fields["categories"] == [["Movies", "Comedy"]]
    assert raw.source["loader"] == "movielens_grouplens" and set(raw.source["files"]) == {"ratings", "items"}


def test_movielens_grouplens_bad_input(grouplens, tmp_path):
    ratings, items = grouplens
    with raises_at(tmp_path / "u.nothing"):
        load_movielens_grouplens(tmp_path / "u.nothing", items)
    odd = write(tmp_path / "odd.data", "196\t242\t3\t881250949\n196 242 3 881250949\n")
    with raises_at(odd, 2):
        load_movielens_grouplens(odd, items)
    late = write(tmp_path / "late.data", "196\t242\t3\tyesterday\n")
    with raises_at(late, 1):
        load_movielens_grouplens(late, items)
    cut = write(tmp_path / "cut.item", items.read_text(encoding="latin-1") + "5|Copycat (1995)|01-Jan-1995\n", encoding="latin-1")
    with raises_at(cut, 5):
        load_movielens_grouplens(ratings, cut)
    twice = write(
        tmp_path / "twice.item", items.read_text(encoding="latin-1") + grouplens_item(1, "Again (1995)", "", set()), encoding="latin-1"
    )
    with raises_at(twice, 5):
        load_movielens_grouplens(ratings, twice)


# ---------------------------------------------------------------- registry


def test_registry_dispatches_and_rejects_unknown_names(beauty):
    assert set(LOADERS) == {"amazon2014", "amazon2014_dumps", "lcrec", "movielens", "movielens_grouplens", "synthetic"}
    sequences, items = beauty
    assert counts(load_source("amazon2014", sequences=sequences, items=items)) == (2, 3, 5)
    with pytest.raises(
        UnisrError, match="unknown loader 'amazon2015'.*amazon2014, amazon2014_dumps, lcrec, movielens, movielens_grouplens"
    ):
        load_source("amazon2015", sequences=sequences)
    with pytest.raises(UnisrError, match="loader 'lcrec'.*interactions, items"):
        load_source("lcrec", sequences=sequences, items=items)


# ---------------------------------------------------------------- real datasets (published counts)


def test_real_beauty_matches_published_counts(shared_data):
    folder = shared_data / "amazon-2014-beauty"
    raw = load_amazon2014_processed(folder / "user_sequence.txt", folder / "item_text.jsonl")
    assert counts(raw) == (22_363, 12_101, 198_502)
    assert raw.items[0].item_id == "B004756YJA"  # Beauty.txt numbers ASINs by first appearance, item 1 first
    assert all(item.title for item in raw.items)


def test_real_scientific_matches_published_counts(shared_data):
    folder = shared_data / "amazon-2018-scientific"
    raw = load_lcrec(folder / "Scientific.inter.json", folder / "Scientific.item.json")
    assert counts(raw) == (8_317, 4_344, 58_492)
    assert sum("categories" not in item.fields for item in raw.items) == 131
    assert sum("brand" not in item.fields for item in raw.items) == 12


def test_real_movielens_matches_published_counts(shared_data):
    folder = shared_data / "ml-100k"
    raw = load_movielens_atomic(folder / "ml-100k.inter", folder / "ml-100k.item")
    assert counts(raw) == (943, 1_682, 100_000)
    assert all(list(s.timestamps) == sorted(s.timestamps) for s in raw.sequences)
