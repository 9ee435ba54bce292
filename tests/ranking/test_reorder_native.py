"""One request's ranked list through ``topk.c`` (``recsys_blend_order``) against the numpy
path of ``reorder`` and ``blend_scores``: the same order, ids and scores, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.native import topk as native_topk
from recsys.ranking.ranker import BLEND_K, Ranked, blend_scores, reorder
from recsys.retrieval.merge import CandidateBatch

pytestmark = pytest.mark.skipif(
    native_topk._blend_kernel() is None, reason="the C top-k kernel is not built here"
)


def _batch(ids: np.ndarray) -> CandidateBatch:
    return CandidateBatch(
        sources=("a",),
        ids=ids,
        fused=np.zeros(ids.shape, np.float32),
        source_scores=np.zeros((*ids.shape, 1), np.float32),
        source_ranks=np.zeros((*ids.shape, 1), np.int32),
        links=None,
    )


def _numpy(batch: CandidateBatch, scores: np.ndarray, blend: float) -> Ranked:
    two = CandidateBatch.stack([batch, batch])  # two requests: the numpy path
    both = np.concatenate([scores, scores])
    ranked = reorder(two, blend_scores(two, both, blend) if blend > 0 else both)
    return Ranked(ranked.ids[:1], ranked.scores[:1], ranked.order[:1])


def _same(a: Ranked, b: Ranked) -> None:
    np.testing.assert_array_equal(a.order, b.order)
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.scores.dtype == b.scores.dtype == np.float32
    assert a.scores.tobytes() == b.scores.tobytes()


@pytest.mark.parametrize("blend", [0.0, 1e-9, 0.3, 0.5, 0.97, 1.0, -0.2])
@pytest.mark.parametrize("seed", range(4))
def test_the_c_list_is_the_numpy_list(blend: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 700))
    ids = rng.permutation(5000)[:n].astype(np.int64)[None, :]
    ids[0, rng.random(n) < 0.2] = -1  # empty slots, anywhere
    filled = int((ids >= 0).sum())
    scores = rng.normal(0, 1, filled).astype(np.float32)
    scores[rng.random(filled) < 0.2] = 0.5  # ties: slot order breaks them
    scores[rng.random(filled) < 0.05] = -np.inf
    scores[rng.random(filled) < 0.05] = -0.0  # equal to 0.0
    batch = _batch(ids)
    compiled = reorder(batch, scores, blend)
    assert native_topk.blend_order(ids[0], scores, blend, BLEND_K) is not None
    _same(compiled, _numpy(batch, scores, blend))


def test_a_list_of_empty_slots_and_of_one() -> None:
    empty = _batch(np.full((1, 5), -1, np.int64))
    _same(reorder(empty, np.empty(0, np.float32), 0.4), _numpy(empty, np.empty(0, np.float32), 0.4))
    one = _batch(np.array([[7]], np.int64))
    _same(
        reorder(one, np.array([2.0], np.float32), 0.4),
        _numpy(one, np.array([2.0], np.float32), 0.4),
    )


def test_nan_and_odd_input_are_left_to_numpy() -> None:
    ids = np.arange(6, dtype=np.int64)
    scores = np.arange(6, dtype=np.float32)
    assert native_topk.blend_order(ids, scores, 0.5, BLEND_K) is not None
    nan = scores.copy()
    nan[2] = np.nan
    assert native_topk.blend_order(ids, nan, 0.5, BLEND_K) is None
    assert native_topk.blend_order(ids, scores.astype(np.float64), 0.5, BLEND_K) is None
    assert native_topk.blend_order(ids.astype(np.int32), scores, 0.5, BLEND_K) is None
    assert native_topk.blend_order(ids, scores[:5], 0.5, BLEND_K) is None  # one short
    batch = _batch(ids[None, :])
    _same(reorder(batch, nan, 0.5), _numpy(batch, nan, 0.5))  # numpy decides where NaN goes
