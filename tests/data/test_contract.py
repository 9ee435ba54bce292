"""The dataset loader accepts the canonical form and rejects broken files by name."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys.data.contract import Dataset, DatasetError, load_dataset


def good() -> Dataset:
    inter = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u2"],
            "item_id": ["i1", "i2", "i1"],
            "ts": [1, 2, 3],
            "event": ["view", "purchase", "click"],
            "value": [None, 9.5, None],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2"],
            "title": ["Red Scarf", "Blue Hat"],
            "price": [10.0, 20.0],
            "in_stock": [True, False],
            "attributes": ['{"colour": "red"}', "{}"],
        }
    )
    queries = pd.DataFrame({"query_id": ["q1"], "text": ["scarf"]})
    qrels = pd.DataFrame({"query_id": ["q1"], "item_id": ["i1"], "grade": [2]})
    return Dataset(inter, items, {"name": "tiny"}, queries=queries, qrels=qrels)


def test_round_trip(tmp_path: Path) -> None:
    good().save(tmp_path / "ds")
    ds = load_dataset(tmp_path / "ds")
    assert ds.counts() == {
        "users": 2,
        "items": 2,
        "items_with_interactions": 2,
        "interactions": 3,
        "queries": 1,
    }
    assert ds.interactions["ts"].dtype == "int64"
    assert json.loads((tmp_path / "ds" / "meta.json").read_text())["name"] == "tiny"


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda d: setattr(d, "interactions", d.interactions.drop(columns="ts")),
            r"missing required column.*ts",
        ),
        (lambda d: d.interactions.__setitem__("ts", [1.5, 2.0, 3.0]), r"column 'ts'.*int64"),
        (lambda d: d.interactions.__setitem__("event", ["view", "buy", "view"]), r"'buy'.*valid"),
        (lambda d: d.interactions.__setitem__("item_id", ["i1", "i9", "i1"]), r"'i9'"),
        (lambda d: d.interactions.__setitem__("user_id", ["u1", None, "u2"]), r"user_id.*missing"),
        (lambda d: d.interactions.__setitem__("user_id", ["u1", 7, "u2"]), r"user_id.*int"),
        (lambda d: d.items.__setitem__("item_id", ["i1", "i1"]), r"duplicated ids"),
        (lambda d: d.items.__setitem__("in_stock", ["yes", "no"]), r"in_stock.*bool"),
        (lambda d: d.qrels.__setitem__("item_id", ["nope"]), r"qrels.parquet.*'nope'"),
        (lambda d: setattr(d, "qrels", None), r"come together"),
    ],
)
def test_contract_violations_name_the_problem(mutate, match) -> None:
    ds = good()
    mutate(ds)
    with pytest.raises(DatasetError, match=match):
        ds.validate()


def test_load_rejects_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not a dataset directory"):
        load_dataset(tmp_path / "nowhere")
    path = good().save(tmp_path / "ds")
    (path / "items.parquet").write_text("not parquet")
    with pytest.raises(DatasetError, match=r"items.parquet.*cannot be read"):
        load_dataset(path)
    (path / "meta.json").unlink()
    with pytest.raises(DatasetError, match=r"meta.json.*missing"):
        load_dataset(path)
