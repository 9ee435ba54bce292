"""CandidateSource.top: one source's lists for a batch of histories."""

from __future__ import annotations

import numpy as np
import pytest

from models.base import TrainingData
from models.popular import PopularModel
from recsys.data.sequences import Sequences
from recsys.retrieval.sources import CandidateSource


def sequences(rows: list[list[int]], n_items: int) -> Sequences:
    items = np.array([i for row in rows for i in row], dtype=np.int32)
    indptr = np.r_[0, np.cumsum([len(row) for row in rows])].astype(np.int64)
    return Sequences(
        indptr, items, np.zeros(len(items), np.int64), np.zeros(len(items), np.int8), n_items
    )


def popular() -> PopularModel:
    train = sequences([[0, 1, 2], [1, 2], [2], [2, 3]], n_items=6)  # 2 > 1 > 0 = 3 > 4 = 5
    return PopularModel().fit(TrainingData(train))


def test_lists_of_a_batch_where_every_history_has_items_are_the_models() -> None:
    histories = sequences([[2], [0, 1]], n_items=6)
    got = CandidateSource("popular", popular()).top(histories, 3)
    assert got.ids.dtype == np.int64 and got.scores.dtype == np.float32
    np.testing.assert_array_equal(got.ids, [[1, 0, 3], [2, 3, 4]])


def test_an_empty_history_gets_an_empty_list_from_a_source_that_needs_one() -> None:
    histories = sequences([[2], [], [0, 1]], n_items=6)
    got = CandidateSource("popular", popular()).top(histories, 3)
    np.testing.assert_array_equal(got.ids, [[1, 0, 3], [-1, -1, -1], [2, 3, 4]])
    assert np.isneginf(got.scores[1]).all()
    anyone = CandidateSource("popular", popular(), needs_history=False).top(histories, 3)
    np.testing.assert_array_equal(anyone.ids[1], [2, 1, 0])
    for needs in (True, False):  # no histories at all: no lists, and no call to the model
        none = CandidateSource("odd", WrongWidth(), needs_history=needs)  # type: ignore[arg-type]
        assert none.top(sequences([], n_items=6), 3).ids.shape == (0, 3)


class WrongWidth:
    """A model whose lists are one short: a contract break, not a result to pass on."""

    def recommend(self, histories: Sequences, n: int) -> tuple[np.ndarray, np.ndarray]:
        shape = (histories.n_users, n - 1)
        return np.zeros(shape, np.int64), np.zeros(shape, np.float32)


def test_a_model_answering_the_wrong_shape_is_named() -> None:
    source = CandidateSource("odd", WrongWidth())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"source 'odd' answered ids \(1, 2\).*expected \(1, 3\)"):
        source.top(sequences([[1]], n_items=6), 3)
