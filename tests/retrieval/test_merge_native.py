"""The C merge gives the numpy merge's answer bit for bit (ids, fused scores, source ranks and
scores), on random lists with repeats, padding, ties, uneven widths and both fill rules."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from recsys import native
from recsys.retrieval import merge as merge_mod
from recsys.retrieval.merge import CandidateBatch, SourceLists, merge

pytestmark = pytest.mark.skipif(native.find_compiler() is None, reason="no C compiler")


def _both(monkeypatch: pytest.MonkeyPatch, *args: Any, **kwargs: Any) -> tuple[CandidateBatch, ...]:
    assert merge_mod._kernel() is not None, "the C merge did not build"
    compiled = merge(*args, **kwargs)
    with monkeypatch.context() as patched:
        patched.setattr(merge_mod, "_kernel", lambda: None)
        numpy_path = merge(*args, **kwargs)
    return compiled, numpy_path


def _assert_same(a: CandidateBatch, b: CandidateBatch) -> None:
    assert a.sources == b.sources
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.fused.tobytes() == b.fused.tobytes()  # bit for bit, not within a tolerance
    np.testing.assert_array_equal(a.source_ranks, b.source_ranks)
    np.testing.assert_array_equal(a.source_scores, b.source_scores)  # NaN where missed
    assert a.source_scores.dtype == b.source_scores.dtype == np.float32


def _random_lists(
    rng: np.random.Generator, names: list[str], batch: int, n_items: int, ties: bool
) -> dict[str, SourceLists]:
    lists = {}
    for name in names:
        width = int(rng.integers(1, 60))
        ids = rng.integers(0, n_items, size=(batch, width))  # repeats within a list included
        ids[rng.random((batch, width)) < 0.15] = -1
        if batch > 1:
            ids[-1] = -1  # a cold row: nothing from any source
        scores = rng.random((batch, width)).astype(np.float32)
        if ties:
            scores = np.round(scores, 1)
        lists[name] = SourceLists(ids, scores)
    return lists


@pytest.mark.parametrize("fill", [False, True])
def test_the_c_merge_equals_the_numpy_merge(monkeypatch: pytest.MonkeyPatch, fill: bool) -> None:
    rng = np.random.default_rng(11 + fill)
    for trial in range(60):
        names = ["als", "covisit", "attributes", "popular"][: int(rng.integers(1, 5))]
        lists = _random_lists(rng, names, int(rng.integers(1, 6)), int(rng.integers(5, 300)),
                              ties=trial % 2 == 0)  # fmt: skip
        equal = trial % 3 == 0  # equal weights: many equal fused scores, ties go by id
        quotas = {n: 1.0 if equal else float(rng.random() + 0.05) for n in names}
        weights = None if equal else {n: float(rng.random()) for n in names}
        fills = {n: float(rng.choice([0.0, 0.5, 1.3])) for n in names} if fill else None
        total = int(rng.integers(1, 120))
        guaranteed = None if trial % 4 else int(rng.integers(0, total + 1))
        compiled, numpy_path = _both(monkeypatch, lists, quotas, total, names, weights=weights,
                                     fill=fills, guaranteed=guaranteed)  # fmt: skip
        _assert_same(compiled, numpy_path)


def test_one_request_gets_the_same_merge_alone_as_in_a_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rng = np.random.default_rng(5)
    names = ["als", "covisit", "popular"]
    lists = _random_lists(rng, names, 4, 500, ties=True)
    quotas = {"als": 0.5, "covisit": 0.3, "popular": 0.2}
    together, _ = _both(monkeypatch, lists, quotas, 40, names)
    for row in range(4):
        alone_lists = {n: SourceLists(s.ids[row : row + 1], s.scores[row : row + 1])
                       for n, s in lists.items()}  # fmt: skip
        alone, _ = _both(monkeypatch, alone_lists, quotas, 40, names)
        _assert_same(alone, together.rows(row, row + 1))


def test_the_merge_falls_back_to_numpy_when_native_kernels_are_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECSYS_NATIVE", "off")
    for cached in (native.get_settings, native.library, merge_mod._kernel):
        cached.cache_clear()
    try:
        assert merge_mod._kernel() is None
        lists = {"a": SourceLists(np.array([[3, 1, -1]]), np.array([[0.9, 0.5, 0.0]], np.float32))}
        got = merge(lists, {"a": 1.0}, 3)
        assert got.ids.tolist() == [[3, 1, -1]]
    finally:
        for cached in (native.get_settings, native.library, merge_mod._kernel):
            cached.cache_clear()
