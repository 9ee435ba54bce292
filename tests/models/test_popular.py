"""Popularity's precomputed-order recommend gives what scoring every item gives."""

from __future__ import annotations

import numpy as np

from models.base import CandidateModel, TrainingData
from models.popular import PopularModel
from recsys.data.sequences import Sequences


def test_recommend_matches_full_scoring() -> None:
    rng = np.random.default_rng(0)
    n_items = 50
    train = Sequences(
        np.array([0, 30, 60]), rng.integers(0, n_items, 60).astype(np.int32),
        np.arange(60), np.zeros(60, np.int8), n_items,
    )  # fmt: skip
    model = PopularModel().fit(TrainingData(train))
    model.counts_ = np.round(model.counts_ / 2)  # plenty of ties
    hist = Sequences(np.array([0, 0, 5, 45]), rng.permutation(n_items)[:45].astype(np.int32),
                     np.arange(45), np.zeros(45, np.int8), n_items)  # fmt: skip
    for n in (1, 10, 40):
        fast_ids, fast_scores = model.recommend(hist, n)
        _, scores = CandidateModel.recommend(model, hist, n)
        np.testing.assert_array_equal(fast_scores, scores)  # same items up to ties...
        for row in range(hist.n_users):  # ...and never a seen one
            seen = hist.items[hist.indptr[row] : hist.indptr[row + 1]]
            assert not np.isin(fast_ids[row], seen).any()
            assert (fast_ids[row] >= 0).sum() == min(n, n_items - len(seen))


def test_a_refit_ranks_by_the_new_counts() -> None:
    # the order served is derived from the counts on first use: a second fit must not keep
    # the first fit's order
    def seqs(items: list[int]) -> Sequences:
        n = len(items)
        return Sequences(np.array([0, n]), np.array(items, np.int32), np.arange(n),
                         np.zeros(n, np.int8), 5)  # fmt: skip

    empty = Sequences(np.array([0, 0]), np.zeros(0, np.int32), np.zeros(0, np.int64),
                      np.zeros(0, np.int8), 5)  # fmt: skip
    model = PopularModel().fit(TrainingData(seqs([0, 0, 0, 1])))
    assert model.recommend(empty, 1)[0][0, 0] == 0
    model.fit(TrainingData(seqs([3, 3, 3, 1])))
    assert model.recommend(empty, 1)[0][0, 0] == 3
    # a seen item leaves the list by its place in the order, the rest keep theirs
    np.testing.assert_array_equal(model.recommend(seqs([3]), 2)[0][0], [1, 0])
