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


def test_link_weights_are_the_matrix_entries_from_each_latest_item() -> None:
    model = _fitted()
    matrix = model.matrix_
    assert matrix is not None
    # request 0 saw 1 then 3; request 1 saw nothing
    histories = Sequences(np.array([0, 2, 2]), np.array([1, 3], np.int32), np.arange(2),
                          np.zeros(2, np.int8), 6)  # fmt: skip
    ids = np.array([[2, 4, 5, -1], [0, 1, -1, -1]])
    links = model.link_weights(histories, ids, 3)
    assert links.shape == (2, 4, 3)
    dense = matrix.toarray()
    assert links[0, :3, 0].tolist() == dense[3, [2, 4, 5]].tolist()  # from the latest item, 3
    assert links[0, :3, 1].tolist() == dense[1, [2, 4, 5]].tolist()  # from the one before, 1
    assert links[0, 0, 1] > 0 and links[0, 1, 0] > 0  # 2 follows 1, 4 follows 3
    assert (links[0, :, 2] == 0).all() and (links[0, 3] == 0).all()  # no third item; empty slot
    assert (links[1] == 0).all()  # no history, no links
