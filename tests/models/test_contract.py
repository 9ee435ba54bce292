"""The one contract every candidate model passes, on seeded data with a known answer.

The known answer is the `aisles` fixture (tests/conftest.py): the next item is determined
by the last one while popularity is nearly flat, so a model that learns anything from
sequences must beat popularity by a wide margin; popularity must put its most frequent item
first.

Every model is fitted with the catalog (``TrainingData(train, items)``), as the evaluation
protocol and the artifact bundle fit them. The aisles titles ("item i42") carry no aisle, so
the learning check does not apply to models that learn from text (``uses_text``); those show
that they learn in their own tests, on data whose text carries the answer (test_text.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from models.base import CandidateModel, TrainingData
from models.registry import MODELS, make_model
from recsys.data.contract import Dataset
from recsys.data.sequences import Sequences, encode
from recsys.data.split import leave_one_out
from recsys.evaluation.protocol import evaluate_fitted


@pytest.fixture(scope="module")
def split(aisles: Dataset):
    return leave_one_out(encode(aisles))


@pytest.fixture(scope="module")
def data(split, aisles: Dataset) -> TrainingData:
    return TrainingData(split.train, aisles.items)


@pytest.fixture(scope="module")
def popular_ndcg(data: TrainingData, split) -> float:
    model = make_model("popular").fit(data)
    return float(evaluate_fitted(model, split, "test")["ndcg@10"])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_verbs_and_shapes(name: str, split, data: TrainingData) -> None:
    # every model takes the validation split, as the bundle fits them (used or ignored)
    model: CandidateModel = make_model(name).fit(data, valid=split.valid)
    hist = split.test.history.select(np.arange(8))
    scores = model.score(hist)
    assert scores.shape == (8, split.data.n_items)
    assert np.isfinite(scores).all()

    ids, top = model.recommend(hist, 15)
    assert ids.shape == top.shape == (8, 15) and ids.dtype == np.int64
    assert (np.diff(top, axis=1) <= 0).all(), "scores come best first"
    for row in range(8):
        assert not set(ids[row]) & set(hist.user(row).tolist()), "history is excluded"
        assert len(set(ids[row])) == 15

    ids_all, scores_all = model.recommend(hist, split.data.n_items + 5)
    seen = hist.lengths
    for row in range(8):
        pad = ids_all[row] == -1
        assert pad.sum() == seen[row] + 5 and np.isneginf(scores_all[row][pad]).all()

    sim_ids, _ = model.similar_items(np.array([0, 57]), 5)
    assert sim_ids.shape == (2, 5)
    assert 0 not in sim_ids[0] and 57 not in sim_ids[1]

    again = make_model(name).fit(data, valid=split.valid)
    np.testing.assert_array_equal(again.score(hist), scores)  # seeded and deterministic
    with pytest.raises(ValueError, match="positive"):
        model.recommend(hist, 0)


# Finding the shopper's aisle alone gives NDCG@10 around 0.4 (the unseen aisle items in random
# order); only a model that uses the order of the sequence can rank the very next item first.
SEQUENCE_AWARE = {"covisit", "sasrec"}


@pytest.mark.parametrize("name", sorted(set(MODELS) - {"popular"}))
def test_learned_models_beat_popularity(
    name: str, split, data: TrainingData, popular_ndcg: float
) -> None:
    model = make_model(name)
    if getattr(model, "uses_text", False):
        pytest.skip(f"{name} learns from text; the aisles titles carry no aisle (test_{name}.py)")
    model.fit(data)
    ndcg = evaluate_fitted(model, split, "test")["ndcg@10"]
    assert ndcg > 3 * popular_ndcg and ndcg > 0.3, (ndcg, popular_ndcg)
    if name in SEQUENCE_AWARE:
        assert ndcg > 0.5, ndcg


def test_popular_ranks_the_most_frequent_item_first(split, data: TrainingData) -> None:
    model = make_model("popular").fit(data)
    counts = np.bincount(split.train.items, minlength=split.data.n_items)
    empty = Sequences(
        np.zeros(2, np.int64),
        np.zeros(0, np.int32),
        np.zeros(0, np.int64),
        np.zeros(0, np.int8),
        split.data.n_items,
    )
    ids, _ = model.recommend(empty, 3)
    assert counts[ids[0, 0]] == counts.max()
    assert counts[ids[0, 0]] >= counts[ids[0, 1]] >= counts[ids[0, 2]]


def test_unfitted_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        make_model("covisit").similar_items(np.array([1]), 3)


def test_unknown_model_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'als2'.*covisit"):
        make_model("als2")
