"""Attribute retrieval learns from catalog rows: on the aisles data with each item's aisle as
an attribute, it finds the shopper's aisle (the known answer) and beats popularity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.attributes import AttributesConfig, AttributesModel, coverage, item_tokens
from models.base import TrainingData
from models.registry import make_model
from recsys.data.contract import Dataset
from recsys.data.sequences import encode
from recsys.data.split import leave_one_out
from recsys.evaluation.protocol import evaluate_fitted
from tests.conftest import make_aisles


@pytest.fixture(scope="module")
def labelled() -> Dataset:
    ds = make_aisles(seed=1)
    aisle = ds.items["item_id"].str[1:].astype(int) // 10
    ds.items["attributes"] = [json.dumps({"aisle": int(a)}) for a in aisle]
    ds.items["brand"] = [f"brand {a % 3}" for a in aisle]  # shared across aisles: weak signal
    return ds


def test_finds_the_aisle_and_beats_popularity(labelled: Dataset) -> None:
    enc = encode(labelled)
    split = leave_one_out(enc)
    items = labelled.items.set_index("item_id").loc[list(enc.item_ids)].reset_index()
    data = TrainingData(split.train, items)
    model = AttributesModel().fit(data)
    ndcg = evaluate_fitted(model, split, "test")["ndcg@10"]
    popular = evaluate_fitted(make_model("popular").fit(data), split, "test")["ndcg@10"]
    assert ndcg > 3 * popular and ndcg > 0.2, (ndcg, popular)
    ids, _ = model.recommend(split.test.history.select(np.arange(20)), 1)
    aisle_of = np.array([int(i[1:]) // 10 for i in enc.item_ids])
    for row in range(20):
        seen = split.test.history.user(row)
        last = int(seen[-1])
        if (aisle_of[seen] == aisle_of[last]).sum() == 10:
            continue  # the whole aisle is seen; nothing in it is left to recommend
        assert aisle_of[ids[row, 0]] == aisle_of[last], "the top item shares the latest aisle"


def test_tokens_cover_brand_category_levels_and_attributes() -> None:
    import pandas as pd

    row = pd.Series({"brand": "Acme", "category": "A > B > C",
                     "attributes": json.dumps({"colour": ["Red", "blue"], "size": 3})})  # fmt: skip
    assert set(item_tokens(row)) == {
        "brand=acme", "cat1=a", "cat2=a > b", "cat3=a > b > c",
        "colour=red", "colour=blue", "size=3",
    }  # fmt: skip
    bad = pd.Series({"attributes": "{not json"})
    assert list(item_tokens(bad)) == []
    assert coverage(pd.DataFrame({"title": ["x", "y"]})) == 0.0


def test_needs_the_catalog_and_valid_config(labelled: Dataset) -> None:
    split = leave_one_out(encode(labelled))
    with pytest.raises(ValueError, match="needs the catalog"):
        AttributesModel().fit(TrainingData(split.train, None))
    with pytest.raises(ValueError, match="half_life"):
        AttributesConfig(half_life=0)


def test_a_refit_forgets_what_the_first_fit_derived(labelled: Dataset) -> None:
    """recommend derives postings and the prior's order from the fitted arrays; fitting the same
    object again (another interaction log) must not serve the first fit's."""
    enc = encode(labelled)
    split = leave_one_out(enc)
    items = labelled.items.set_index("item_id").loc[list(enc.item_ids)].reset_index()
    first, second = TrainingData(split.train, items), TrainingData(split.train_and_valid, items)
    histories = split.test.history.select(np.arange(40))
    model = AttributesModel().fit(first)
    model.recommend(histories, 30)  # derives from the first fit
    first_order = model.prior_order_
    model.fit(second)
    fresh = AttributesModel().fit(second)
    got, want = model.recommend(histories, 30), fresh.recommend(histories, 30)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1].tobytes() == want[1].tobytes()
    # the fill order of the sparse path (items no shared token reaches), by the new prior
    assert not np.array_equal(first_order, fresh.prior_order_)  # the logs' popularity differs
    np.testing.assert_array_equal(model.prior_order_, fresh.prior_order_)
