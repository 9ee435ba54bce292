"""Sparse top-n (co-visitation, attributes) returns the dense catalog scan's list: the same
scores in the same order, each id scored as the dense row scores it, the history left out."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models import sparse_topn
from models.attributes import AttributesModel
from models.base import CandidateModel, TrainingData
from models.covisit import CovisitModel
from models.sparse_topn import sparse_top_n, worth_sparse
from recsys.data.sequences import EncodedDataset, Sequences, encode
from recsys.data.split import leave_one_out
from recsys.data.synth import generate


@pytest.fixture(scope="module")
def shop() -> tuple[EncodedDataset, TrainingData, Sequences]:
    ds = generate(users=800, items=400, seed=3)
    enc = encode(ds)
    split = leave_one_out(enc)
    items = ds.items.set_index("item_id").loc[list(enc.item_ids)].reset_index()
    histories = split.test.history.select(np.arange(40))
    return enc, TrainingData(split.train, items), histories


@pytest.fixture(autouse=True)
def always_sparse(monkeypatch: pytest.MonkeyPatch) -> None:
    """A small catalog's hits cover much of it, which would send these rows the dense way."""
    monkeypatch.setattr(sparse_topn, "MAX_SPARSE_SHARE", 1e9)


def check_same_as_dense(model: CandidateModel, histories: Sequences, n: int) -> None:
    dense_ids, dense_scores = CandidateModel.recommend(model, histories, n)
    ids, scores = model.recommend(histories, n)
    assert ids.shape == scores.shape == (histories.n_users, n)
    np.testing.assert_allclose(scores, dense_scores, rtol=1e-5, atol=1e-12)
    full = model.score(histories)
    for row in range(histories.n_users):
        seen = set(histories.user(row).tolist())
        got = ids[row][ids[row] >= 0]
        assert not seen & set(got.tolist())
        assert len(set(got.tolist())) == len(got)  # each item once
        np.testing.assert_allclose(full[row, got], scores[row][: len(got)], rtol=1e-5)
        assert np.array_equal(ids[row] >= 0, dense_ids[row] >= 0)


@pytest.mark.parametrize("n", [5, 50, 500])
def test_covisit_sparse_equals_dense(
    shop: tuple[EncodedDataset, TrainingData, Sequences], n: int
) -> None:
    _, data, histories = shop
    check_same_as_dense(CovisitModel().fit(data), histories, n)


@pytest.mark.parametrize("cls", [CovisitModel, AttributesModel])
def test_per_request_dense_row_equals_batch_dense(
    shop: tuple[EncodedDataset, TrainingData, Sequences],
    monkeypatch: pytest.MonkeyPatch,
    cls: type[CandidateModel],
) -> None:
    monkeypatch.setattr(sparse_topn, "MAX_SPARSE_SHARE", 0.0)  # every row the dense way
    _, data, histories = shop
    check_same_as_dense(cls().fit(data), histories, 50)


@pytest.mark.parametrize("n", [5, 50, 500])
def test_attributes_sparse_equals_dense(
    shop: tuple[EncodedDataset, TrainingData, Sequences], n: int
) -> None:
    _, data, histories = shop
    check_same_as_dense(AttributesModel().fit(data), histories, n)


def test_attributes_pickle_leaves_derived_postings_out(
    shop: tuple[EncodedDataset, TrainingData, Sequences],
) -> None:
    import pickle

    _, data, histories = shop
    model = AttributesModel().fit(data)
    before = model.recommend(histories, 20)
    assert model.postings_ is not None
    again = pickle.loads(pickle.dumps(model))
    assert getattr(again, "postings_", None) is None
    after = again.recommend(histories, 20)
    assert np.array_equal(before[0], after[0]) and np.array_equal(before[1], after[1])


def test_sparse_top_n_pads_and_validates() -> None:
    hits = sp.csr_matrix(np.array([[0.0, 3.0, 0.0, 1.0]], dtype=np.float32))
    order = np.array([2, 0, 1, 3])
    history = Sequences(np.array([0, 1]), np.array([3], np.int32), np.zeros(1, np.int64),
                        np.zeros(1, np.int8), 4)  # fmt: skip
    ids, scores = sparse_top_n(hits, order, np.zeros(4, np.float32), history, 6)
    assert ids.tolist() == [[1, 2, 0, -1, -1, -1]]
    assert scores[0, :3].tolist() == [3.0, 0.0, 0.0] and np.isneginf(scores[0, 3:]).all()
    with pytest.raises(ValueError, match="n must be positive, got 0"):
        sparse_top_n(hits, order, np.zeros(4, np.float32), history, 0)


def test_broad_hits_and_large_batches_take_the_dense_path(
    monkeypatch: pytest.MonkeyPatch, shop: tuple[EncodedDataset, TrainingData, Sequences]
) -> None:
    monkeypatch.setattr(sparse_topn, "MAX_SPARSE_SHARE", 0.1)
    assert worth_sparse(1_000, 1, 20_000) and not worth_sparse(5_000, 1, 20_000)
    assert not worth_sparse(10, sparse_topn.MAX_SPARSE_BATCH + 1, 20_000)
    _, data, histories = shop
    model = CovisitModel().fit(data)
    calls: list[int] = []
    monkeypatch.setattr(
        "models.covisit.sparse_top_n", lambda *a, **k: calls.append(1) or sparse_top_n(*a, **k)
    )
    model.recommend(histories.select(np.arange(1)), 10)  # 400 items: links cover > 10%
    assert not calls
    monkeypatch.setattr(sparse_topn, "MAX_SPARSE_SHARE", 1e9)
    model.recommend(histories.select(np.arange(1)), 10)
    assert calls
