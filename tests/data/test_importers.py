"""Importers: small fixture files per format and error path, plus the real datasets if present."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys.data.contract import EVENTS, DatasetError, load_dataset
from recsys.data.importers import IMPORTERS, ImportReport, import_dataset, importer_options
from recsys.data.importers.minionerec import INCONSISTENT, rebuild_sequences
from recsys.data.locations import datasets_dir

REAL = datasets_dir()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def interactions_of(report: ImportReport) -> list[tuple[str, str, int]]:
    inter = report.dataset.interactions
    return list(zip(inter["user_id"], inter["item_id"], inter["ts"].tolist(), strict=True))


# --- registry -------------------------------------------------------------------------------


def test_registry_lists_every_format() -> None:
    assert set(IMPORTERS) == {"ml100k", "s3rec", "minionerec", "csv"}
    assert "user_col" in importer_options("csv")


def test_unknown_format_names_it_and_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'parquetish'.*csv.*minionerec.*ml100k.*s3rec"):
        import_dataset("parquetish", tmp_path)


def test_unknown_option_is_rejected(tmp_path: Path) -> None:
    src = write(tmp_path / "b.txt", "1 a b\n")
    with pytest.raises(ValueError, match=r"unknown option.*'user_col'.*valid are"):
        import_dataset("s3rec", src, user_col="u")


# --- ml100k (RecBole atomic files) ----------------------------------------------------------

INTER = (
    "timestamp:float\titem_id:token\trating:float\tuser_id:token\n"
    "100\t1\t4\tu1\n"
    "90\t2\t3\tu1\n"
    "100\t1\t4\tu1\n"  # exact duplicate
    "50\t9\t5\tu2\n"  # item 9 is not in .item
    "60\t1\t2\t\n"  # no user
    "\n"
)
ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    "2\tNo Year Film\t\tDrama\n"
    "3\tUnrated\t1990\t\n"
)
USER = "user_id:token\tage:float\tgender:token\nu1\t24\tM\nu2\t53\tF\n"


def ml_folder(tmp_path: Path, inter: str = INTER) -> Path:
    write(tmp_path / "ml" / "toy.inter", inter)
    write(tmp_path / "ml" / "toy.item", ITEM)
    write(tmp_path / "ml" / "toy.user", USER)
    return tmp_path / "ml"


def test_ml100k_maps_fields_items_and_users(tmp_path: Path) -> None:
    report = import_dataset("ml100k", ml_folder(tmp_path))
    ds = report.dataset
    assert interactions_of(report) == [("u1", "1", 100), ("u1", "2", 90), ("u2", "9", 50)]
    assert set(ds.interactions["event"]) == {"rating"}
    assert ds.interactions["value"].tolist() == [4.0, 3.0, 5.0]
    assert report.dropped == {
        "exact duplicate row": 1,
        "missing user_id": 1,
        "empty line in toy.inter": 1,
    }
    items = ds.items.set_index("item_id")
    assert items.loc["1", "title"] == "Toy Story (1995)"
    assert items.loc["1", "category"] == "Movies > Animation"
    assert json.loads(str(items.loc["1", "attributes"])) == {
        "year": 1995,
        "genres": ["Animation", "Children's", "Comedy"],
    }
    assert items.loc["2", "title"] == "No Year Film"
    assert items.loc["3", "category"] is None
    assert items.loc["9", "title"] == "item 9"
    assert any("1 items referenced" in n and "placeholder" in n for n in report.notes)
    assert ds.users is not None and ds.users["age"].tolist() == [24.0, 53.0]
    assert ds.meta["source"]["format"] == "ml100k" and ds.meta["name"] == "toy"
    assert ds.meta["counts"]["interactions"] == 3


def test_ml100k_round_trips_through_save_and_load(tmp_path: Path) -> None:
    report = import_dataset("ml100k", ml_folder(tmp_path))
    loaded = load_dataset(report.dataset.save(tmp_path / "out"))
    assert loaded.counts() == report.dataset.counts()
    assert loaded.meta["dropped"] == report.dropped


def test_ml100k_without_timestamp_uses_row_order(tmp_path: Path) -> None:
    inter = "user_id:token\titem_id:token\nu1\t1\nu1\t2\nu2\t1\n"
    report = import_dataset("ml100k", ml_folder(tmp_path, inter))
    assert interactions_of(report) == [("u1", "1", 0), ("u1", "2", 1), ("u2", "1", 0)]
    assert set(report.dataset.interactions["event"]) == {"purchase"}
    assert any("row order" in n for n in report.notes)


@pytest.mark.parametrize(
    ("inter", "match"),
    [
        ("user_id:token\trating:float\nu1\t3\n", r"toy\.inter, column 'item_id': missing column"),
        ("user_id:token\titem_id:token\ttimestamp:float\nu1\t1\tsoon\n", r"line 2: not a number"),
        ("user_id:token\titem_id:token\ttimestamp:float\nu1\t1\t1.5\n", r"line 2: .*whole"),
        ("user_id:token\titem_id:token\nu1\t1\nu2\t2\textra\n", r"line 3: expected 2"),
        ("user_id\titem_id:token\nu1\t1\n", r"line 1: header field 'user_id'"),
        ("user_id:token\titem_id:blob\nu1\t1\n", r"unknown type 'blob'"),
    ],
)
def test_ml100k_errors_name_file_line_and_column(tmp_path: Path, inter: str, match: str) -> None:
    with pytest.raises(DatasetError, match=match):
        import_dataset("ml100k", ml_folder(tmp_path, inter))


def test_ml100k_missing_folder_or_inter_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        import_dataset("ml100k", tmp_path / "nope")
    with pytest.raises(DatasetError, match=r"no \.inter file"):
        import_dataset("ml100k", tmp_path)


# --- s3rec ------------------------------------------------------------------------------------


def test_s3rec_positions_are_timestamps_and_attributes_attach(tmp_path: Path) -> None:
    src = write(tmp_path / "Toy.txt", "1 10 11 12\n2 11 10\n")
    write(tmp_path / "Toy_item2attributes.json", json.dumps({"10": [1, 2], "11": [3]}))
    report = import_dataset("s3rec", src)
    ds = report.dataset
    assert interactions_of(report) == [
        ("1", "10", 0),
        ("1", "11", 1),
        ("1", "12", 2),
        ("2", "11", 0),
        ("2", "10", 1),
    ]
    assert set(ds.interactions["event"]) == {"purchase"}
    assert report.dropped == {}
    attrs = dict(zip(ds.items["item_id"], ds.items["attributes"], strict=True))
    assert json.loads(attrs["10"]) == {"attribute_ids": [1, 2]}
    assert json.loads(attrs["12"]) == {}
    assert ds.items.set_index("item_id").loc["12", "title"] == "item 12"
    assert any("purchase" in n for n in report.notes)
    assert ds.meta["license"] == "research use; see source"


def test_s3rec_counts_empty_lines_and_users_without_items(tmp_path: Path) -> None:
    src = write(tmp_path / "Toy.txt", "1 10 11\n\n   \n2\n3 12\n1 13\n")
    report = import_dataset("s3rec", src)
    assert report.dropped == {
        "empty line": 2,
        "user with no items": 1,
        "user repeated on a later line": 1,
    }
    assert report.dataset.counts()["users"] == 2
    assert report.dataset.meta["dropped"] == report.dropped


def test_s3rec_attributes_option_and_errors(tmp_path: Path) -> None:
    src = write(tmp_path / "seq.txt", "1 10\n")
    attrs = write(tmp_path / "elsewhere" / "a.json", json.dumps({"10": [7]}))
    ds = import_dataset("s3rec", src, attributes=attrs).dataset
    assert json.loads(ds.items["attributes"].iloc[0]) == {"attribute_ids": [7]}
    with pytest.raises(DatasetError, match=r"missing\.json.*not found"):
        import_dataset("s3rec", src, attributes=tmp_path / "missing.json")
    write(tmp_path / "bad.json", "{not json")
    with pytest.raises(DatasetError, match=r"bad\.json: is not valid JSON"):
        import_dataset("s3rec", src, attributes=tmp_path / "bad.json")
    with pytest.raises(DatasetError, match=r"nope\.txt: S3-Rec sequence file not found"):
        import_dataset("s3rec", tmp_path / "nope.txt")


# --- minionerec -------------------------------------------------------------------------------

HEADER = "user_id,history_item_title,item_title,history_item_id,item_id\n"


def mini_folder(tmp_path: Path, valid: str, test: str) -> Path:
    folder = tmp_path / "mini"
    write(folder / "valid.csv", HEADER + valid)
    write(folder / "test.csv", HEADER + test)
    catalogue = {
        "1": {
            "title": "One",
            "description": "['Para a.', 'Para b.']",
            "brand": "Acme",
            "categories": "",
        },
        "2": {"title": "Two", "description": "", "brand": "", "categories": "Tools > Saws"},
        "3": {"title": "Three", "description": "['it's broken']", "brand": "B", "categories": ""},
        "4": {"title": "Four", "description": "[]", "brand": "", "categories": ""},
        "8": {"title": "Never bought", "description": "", "brand": "", "categories": ""},
    }
    write(folder / "Toy.item.json", json.dumps(catalogue))
    return folder


def test_minionerec_rebuilds_sequences_across_splits(tmp_path: Path) -> None:
    valid = (
        'A,"[]",Two,"[1, 1]",2\n'  # history repeats item 1: kept
        'B,"[]",Three,[4],3\n'
        'A,"[]",Three,"[1, 1, 2]",3\n'
    )
    test = (
        'A,"[]",Four,"[1, 1, 2, 3]",4\n'
        'B,"[]",One,"[9]",1\n'  # contradicts B's [4, 3]
        'C,"[]",Mystery,"[2]",5\n'  # item 5 is not in the catalogue
    )
    report = import_dataset("minionerec", mini_folder(tmp_path, valid, test))
    ds = report.dataset
    assert interactions_of(report) == [
        ("A", "1", 0),
        ("A", "1", 1),
        ("A", "2", 2),
        ("A", "3", 3),
        ("A", "4", 4),
        ("B", "4", 0),
        ("B", "3", 1),
        ("C", "2", 0),
        ("C", "5", 1),
    ]
    assert report.dropped == {INCONSISTENT: 1}
    items = ds.items.set_index("item_id")
    assert "8" in items.index  # catalogue items without interactions stay
    assert items.loc["5", "title"] == "Mystery"  # placeholder title taken from the CSV
    assert items.loc["1", "description"] == "Para a.\nPara b."
    assert items.loc["1", "brand"] == "Acme" and items.loc["2", "brand"] is None
    assert items.loc["2", "category"] == "Tools > Saws" and items.loc["1", "category"] is None
    assert items.loc["3", "description"] == "it's broken"
    assert items.loc["4", "description"] is None
    assert ds.meta["name"] == "Toy"
    assert any("malformed list literals" in n for n in report.notes)


def test_rebuild_rejects_a_short_history_that_skips_known_items() -> None:
    dropped: dict[str, int] = {}
    rows = [
        ("u", ["a", "b", "c"], "d"),  # window is 3 (longest history)
        ("u", ["c", "d"], "e"),  # shorter than the window yet not the whole sequence
        ("u", ["b", "c", "d"], "f"),
    ]
    seqs, seeded = rebuild_sequences(rows, dropped)
    assert seqs == {"u": ["a", "b", "c", "d", "f"]}
    assert seeded == {"u": 3}
    assert dropped == {INCONSISTENT: 1}


def test_minionerec_errors(tmp_path: Path) -> None:
    folder = mini_folder(tmp_path, 'A,"[]",Two,[1],2\n', 'A,"[]",Two,"[1, 2",3\n')
    with pytest.raises(DatasetError, match=r"test\.csv, column 'history_item_id': line 2"):
        import_dataset("minionerec", folder)
    (folder / "test.csv").unlink()
    with pytest.raises(DatasetError, match=r"test\.csv: test split not found"):
        import_dataset("minionerec", folder)
    write(folder / "test.csv", "user_id,item_id\nA,2\n")
    with pytest.raises(DatasetError, match=r"test\.csv, column 'history_item_id': missing"):
        import_dataset("minionerec", folder)
    with pytest.raises(DatasetError, match="not found"):
        import_dataset("minionerec", tmp_path / "absent")


# --- generic csv / parquet ------------------------------------------------------------------


def test_csv_in_canonical_shape_needs_no_options(tmp_path: Path) -> None:
    src = write(
        tmp_path / "ev.csv", "user_id,item_id,ts,event,value\nu1,007,5,view,\nu1,2,9,cart,2\n"
    )
    report = import_dataset("csv", src)
    assert interactions_of(report) == [("u1", "007", 5), ("u1", "2", 9)]
    assert report.dataset.interactions["event"].tolist() == ["view", "cart"]
    assert any("placeholder" in n for n in report.notes)
    assert report.dataset.meta["source"] == {"path": str(src), "format": "csv"}


def test_csv_column_mapping_datetimes_event_map_and_items(tmp_path: Path) -> None:
    src = write(
        tmp_path / "ev.csv",
        "who,what,when,kind,q,sess\n"
        "u1,p1,2024-01-01T00:00:00Z,buy,,s1\n"
        "u1,p2,2024-01-01 00:00:10+00:00,view,red shoes,s1\n"
        "u2,p1,1704067200,buy,,\n"
        ",p1,2024-01-01,buy,,\n"
        "u2,,2024-01-01,buy,,\n",
    )
    items = write(
        tmp_path / "it.csv",
        "sku,name,cost,maker,cat,text\np1,Shoe,10.5,Acme,A > B,nice\np1,Dup,1,,,\np3,,2,,,\n",
    )
    report = import_dataset(
        "csv",
        src,
        user_col="who",
        item_col="what",
        ts_col="when",
        event_col="kind",
        event_map="buy=purchase",
        query_col="q",
        session_col="sess",
        items=items,
        item_id_col="sku",
        title_col="name",
        price_col="cost",
        brand_col="maker",
        category_col="cat",
        description_col="text",
    )
    ds = report.dataset
    assert interactions_of(report) == [
        ("u1", "p1", 1704067200),
        ("u1", "p2", 1704067210),
        ("u2", "p1", 1704067200),
    ]
    assert ds.interactions["event"].tolist() == ["purchase", "view", "purchase"]
    assert ds.interactions["query"].tolist() == [None, "red shoes", None]
    assert ds.interactions["session_id"].tolist() == ["s1", "s1", None]
    assert report.dropped == {
        "missing user id": 1,
        "missing item id": 1,
        "duplicate item id in items table (first kept)": 1,
    }
    cat = ds.items.set_index("item_id")
    assert list(cat.loc["p1", ["title", "brand", "category", "price", "description"]]) == [
        "Shoe",
        "Acme",
        "A > B",
        10.5,
        "nice",
    ]
    assert cat.loc["p3", "title"] == "item p3" and cat.loc["p2", "title"] == "item p2"
    assert any("1 items referenced" in n for n in report.notes)


def test_csv_without_ts_uses_row_order_and_fixed_event(tmp_path: Path) -> None:
    src = write(tmp_path / "ev.tsv", "u\ti\nx\t1\ny\t1\nx\t2\nx\t1\n")
    report = import_dataset("csv", src, user_col="u", item_col="i", event="click")
    assert interactions_of(report) == [("x", "1", 0), ("y", "1", 0), ("x", "2", 1), ("x", "1", 2)]
    assert set(report.dataset.interactions["event"]) == {"click"}
    assert any("row order" in n for n in report.notes)


def test_csv_reads_parquet_with_typed_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "user": [1, 2],
            "item": [10.0, 11.0],
            "at": pd.to_datetime(["1970-01-01 00:01:00", "1970-01-02 00:00:00"]),
        }
    )
    frame.to_parquet(tmp_path / "ev.parquet")
    report = import_dataset(
        "csv", tmp_path / "ev.parquet", user_col="user", item_col="item", ts_col="at"
    )
    assert interactions_of(report) == [("1", "10", 60), ("2", "11", 86400)]


@pytest.mark.parametrize(
    ("body", "options", "error", "match"),
    [
        (
            "u,i,t\nx,1,5\nx,2,soon\n",
            {"ts_col": "t"},
            DatasetError,
            r"ev\.csv, column 't': line 3: not an integer timestamp or a datetime: 'soon'",
        ),
        ("u,i,t\nx,1,1.5\n", {"ts_col": "t"}, DatasetError, r"column 't': line 2: .*whole"),
        ("u,i,t\nx,1,\n", {"ts_col": "t"}, DatasetError, r"line 2: missing timestamp"),
        (
            "u,i,e\nx,1,buy\n",
            {"event_col": "e"},
            DatasetError,
            r"column 'e': line 2: unknown event values \['buy'\]; valid are \['view'",
        ),
        ("u,i\nx,1\n", {"ts_col": "when"}, DatasetError, r"column 'when': missing column"),
        (
            "u,i,v\nx,1,lots\n",
            {"value_col": "v"},
            DatasetError,
            r"column 'v': line 2: not a number",
        ),
        ("u,i\nx,1\n", {"event": "like"}, ValueError, r"'like' is not one of"),
        (
            "u,i,e\nx,1,buy\n",
            {"event_col": "e", "event_map": {"buy": "own"}},
            ValueError,
            r"event_map targets \['own'\]",
        ),
    ],
)
def test_csv_errors_name_column_row_and_value(
    tmp_path: Path, body: str, options: dict[str, object], error: type, match: str
) -> None:
    src = write(tmp_path / "ev.csv", body)
    with pytest.raises(error, match=match):
        import_dataset("csv", src, user_col="u", item_col="i", **options)


def test_csv_missing_files_and_item_columns(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope\.csv: table not found"):
        import_dataset("csv", tmp_path / "nope.csv")
    src = write(tmp_path / "ev.csv", "user_id,item_id\nx,1\n")
    items = write(tmp_path / "it.csv", "item_id,label\n1,One\n")
    with pytest.raises(
        DatasetError, match=r"it\.csv, column 'title': missing column; pass title_col"
    ):
        import_dataset("csv", src, items=items)
    assert (
        import_dataset("csv", src, items=items, title_col="label").dataset.items["title"][0]
        == "One"
    )


def test_event_names_in_errors_match_the_contract() -> None:
    assert "purchase" in EVENTS and "rating" in EVENTS


# --- real datasets ----------------------------------------------------------------------------


def real(*parts: str) -> Path:
    path = REAL.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (docs/datasets.md says where to put the datasets)")
    return path


@pytest.mark.realdata
def test_real_beauty_counts() -> None:
    report = import_dataset("s3rec", real("amazon-beauty", "Beauty.txt"))
    assert report.dataset.counts() == {
        "users": 22363,
        "items": 12101,
        "items_with_interactions": 12101,
        "interactions": 198502,
    }
    assert report.dropped == {}
    assert report.dataset.items["attributes"].notna().all()


@pytest.mark.realdata
def test_real_ml100k_counts() -> None:
    report = import_dataset("ml100k", real("ml-100k"))
    ds = report.dataset
    assert ds.counts() == {
        "users": 943,
        "items": 1682,
        "items_with_interactions": 1682,
        "interactions": 100000,
    }
    assert report.dropped == {}
    assert ds.users is not None and len(ds.users) == 943
    assert ds.items.set_index("item_id").loc["1", "title"] == "Toy Story (1995)"


@pytest.mark.realdata
def test_real_industrial_reconstruction() -> None:
    report = import_dataset("minionerec", real("amazon-industrial"))
    ds = report.dataset
    # Every one of the 9,065 rows agrees with the sequence rebuilt before it (nothing dropped).
    assert report.dropped == {}
    assert ds.counts() == {
        "users": 3285,
        "items": 3686,
        "items_with_interactions": 3541,
        "interactions": 22743,
    }
    assert int(ds.interactions.duplicated(["user_id", "item_id"]).sum()) == 1079
    assert ds.items["description"].notna().sum() == 3686 - 232
