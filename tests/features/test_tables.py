"""Feature tables: columns, codes, no leakage of held-out targets, ordinal timestamps."""

from __future__ import annotations

import numpy as np
import pytest

from features.tables import (
    ITEM_FEATURES,
    USER_FEATURES,
    brand_codes,
    build_feature_tables,
    category_codes,
    code_vocab,
)
from recsys.data.contract import Dataset
from recsys.data.sequences import encode
from recsys.data.split import leave_one_out
from recsys.data.synth import generate


@pytest.fixture(scope="module")
def shop() -> Dataset:
    return generate(users=200, items=150, seed=0)


def test_columns_and_types(shop: Dataset) -> None:
    enc = encode(shop)
    tables = build_feature_tables(shop, enc, leave_one_out(enc).train)
    assert list(tables.items.columns) == ["item_id", "event_timestamp", *ITEM_FEATURES]
    assert list(tables.users.columns) == ["user_id", "event_timestamp", *USER_FEATURES]
    assert tables.items["item_id"].tolist() == list(enc.item_ids)
    assert tables.users["user_id"].tolist() == list(enc.user_ids)
    assert str(tables.items["event_timestamp"].dt.tz) == "UTC"
    assert all(tables.items[f].dtype == np.float64 for f in ITEM_FEATURES)
    assert tables.items["category_code"].min() >= 1  # the shop has categories for every item
    rank = tables.items["price_rank"]
    assert rank.between(0, 1, inclusive="right").all()


def test_features_come_from_train_only(shop: Dataset) -> None:
    enc = encode(shop)
    split = leave_one_out(enc)
    items = build_feature_tables(shop, enc, split.train).items
    pop = np.bincount(split.train.items, minlength=enc.n_items)
    np.testing.assert_array_equal(items["pop_all"].to_numpy(), pop)
    assert (items["pop_w05"] <= items["pop_w20"]).all()
    assert (items["pop_w20"] <= items["pop_w50"]).all()
    assert (items["pop_w50"] <= items["pop_all"]).all()
    # the full sequences (targets included) give different popularity: targets were left out
    full = build_feature_tables(shop, enc, enc.sequences).items
    assert full["pop_all"].sum() == len(enc.sequences.items) > items["pop_all"].sum()


def test_codes_are_sorted_names_with_zero_unknown(shop: Dataset) -> None:
    items = shop.items.copy()
    items.loc[0, "category"] = None
    items.loc[1, "brand"] = None
    ds = Dataset(shop.interactions, items, shop.meta)
    enc = encode(ds)
    cats, brands = category_codes(ds, enc), brand_codes(ds, enc)
    row = {item: i for i, item in enumerate(enc.item_ids)}
    assert cats[row[items.loc[0, "item_id"]]] == 0
    assert brands[row[items.loc[1, "item_id"]]] == 0
    vocab = code_vocab(ds, "category")
    assert list(vocab) == sorted(vocab)
    i = row[items.loc[2, "item_id"]]
    assert vocab[cats[i] - 1] == items.loc[2, "category"]
    assert cats.max() == len(vocab)


def test_ordinal_timestamps_and_bare_catalog(aisles: Dataset) -> None:
    """Aisles: ts is a position, the catalog has no price, category, brand or stock."""
    enc = encode(aisles)
    tables = build_feature_tables(aisles, enc, leave_one_out(enc).train)
    items, users = tables.items, tables.users
    assert items[["price", "price_rank", "in_stock"]].isna().all().all()
    assert (items[["category_code", "brand_code"]] == 0).all().all()
    assert (items["pop_w50"] > 0).any() and (items["pop_w05"] <= items["pop_all"]).all()
    assert users["price_band"].isna().all()
    assert (users["n_items"] >= 1).all()


def test_train_of_another_dataset_is_refused(shop: Dataset, aisles: Dataset) -> None:
    enc = encode(shop)
    other = leave_one_out(encode(aisles)).train
    with pytest.raises(ValueError, match="leave_one_out"):
        build_feature_tables(shop, enc, other)
