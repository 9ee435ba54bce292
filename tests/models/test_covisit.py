"""Co-visitation's strongest link: the history item a candidate's score comes from."""

from __future__ import annotations

import numpy as np

from models.base import TrainingData
from models.covisit import CovisitModel
from recsys.data.sequences import Sequences


def _fitted() -> CovisitModel:
    # user 0: 0 -> 1 -> 2, user 1: 3 -> 4, user 2: 3 -> 4 -> 0; item 5 is never seen
    items = np.array([0, 1, 2, 3, 4, 3, 4, 0], np.int32)
    indptr = np.array([0, 3, 5, 8], np.int64)
    seqs = Sequences(indptr, items, np.arange(8), np.zeros(8, np.int8), 6)
    return CovisitModel().fit(TrainingData(seqs))


def test_strongest_links_name_the_history_item_that_adds_most() -> None:
    model = _fitted()
    links = model.strongest_links(np.array([1, 3]), np.array([2, 4, 5]))
    assert links.tolist() == [1, 3, -1]  # 2 follows 1, 4 follows 3, nothing co-visits 5
    # the link is the history row with the largest share of the item's score
    history = np.array([1, 3])
    weights = model.config.recency_decay ** np.arange(len(history))[::-1]
    matrix = model.matrix_
    assert matrix is not None
    share = matrix[history][:, [2, 4]].toarray() * weights[:, None]
    assert history[share.argmax(axis=0)].tolist() == links[:2].tolist()
    assert model.strongest_links(np.array([], np.int64), np.array([2])).tolist() == [-1]
