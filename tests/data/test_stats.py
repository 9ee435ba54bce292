"""dataset_stats on a hand-made dataset whose numbers can be checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import Dataset
from recsys.data.importers import import_dataset
from recsys.data.locations import datasets_dir
from recsys.data.stats import dataset_stats, distribution, popularity_share

REAL = datasets_dir()


def toy() -> Dataset:
    # u1 has 4 events on 3 items, u2 has 1; item "a" has 3 of the 5 interactions.
    inter = pd.DataFrame(
        {
            "user_id": ["u1", "u1", "u1", "u1", "u2"],
            "item_id": ["a", "b", "a", "c", "a"],
            "ts": [10, 20, 30, 40, 5],
            "event": ["view", "purchase", "view", "cart", "purchase"],
            "value": [1.0, None, 2.0, None, 4.0],
        }
    )
    items = pd.DataFrame({"item_id": list("abcdefghij"), "title": list("ABCDEFGHIJ")})
    return Dataset(interactions=inter, items=items, meta={"name": "toy"}).validate()


def test_counts_sparsity_and_events() -> None:
    stats = dataset_stats(toy())
    assert stats["name"] == "toy"
    assert stats["counts"] == {
        "users": 2,
        "items": 10,
        "items_with_interactions": 3,
        "interactions": 5,
    }
    assert stats["sparsity"] == pytest.approx(1 - 5 / 20)
    assert stats["distinct_user_item_pairs"] == 4
    assert list(stats["events"].items()) == [("view", 2), ("cart", 1), ("purchase", 2)]
    assert stats["time"] == {"min_ts": 5, "max_ts": 40}
    assert "queries" not in stats["counts"]


def test_per_user_distributions() -> None:
    stats = dataset_stats(toy())
    seq = stats["sequence_length"]
    assert (seq["min"], seq["max"], seq["mean"]) == (1, 4, 2.5)
    assert seq["median"] == pytest.approx(2.5)
    distinct = stats["distinct_items_per_user"]
    assert (distinct["min"], distinct["max"]) == (1, 3)
    assert stats["value"]["mean"] == pytest.approx(7 / 3)


def test_popularity_concentration() -> None:
    stats = dataset_stats(toy())
    # 10 catalogue items: the top 1% is at least one item ("a": 3 of 5); the top 10% is one item.
    assert stats["popularity"]["top_1pct_share"] == pytest.approx(0.6)
    assert stats["popularity"]["top_10pct_share"] == pytest.approx(0.6)
    assert 0 < stats["popularity"]["gini"] < 1


def test_helpers_edge_cases() -> None:
    assert distribution(np.array([])) is None
    assert distribution(np.array([2.5, 3.0])) == {
        "min": 2.5,
        "p25": 2.625,
        "median": 2.75,
        "p75": 2.875,
        "p90": 2.95,
        "max": 3,
        "mean": 2.75,
    }
    assert popularity_share(pd.Series([], dtype="int64").to_numpy(), 5, 0.1) is None
    counts = pd.Series([50, 30, 10, 5, 5]).to_numpy()
    assert popularity_share(counts, 20, 0.10) == pytest.approx(0.8)


def test_stats_are_json_serialisable(tmp_path: Path) -> None:
    src = tmp_path / "seq.txt"
    src.write_text("1 a b c\n2 b\n")
    stats = dataset_stats(import_dataset("s3rec", src).dataset)
    assert json.loads(json.dumps(stats))["counts"]["interactions"] == 4


@pytest.mark.realdata
def test_real_beauty_stats() -> None:
    path = REAL / "amazon-beauty" / "Beauty.txt"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    stats = dataset_stats(import_dataset("s3rec", path).dataset)
    assert stats["sequence_length"]["min"] == 5
    assert stats["sparsity"] == pytest.approx(1 - 198502 / (22363 * 12101))
