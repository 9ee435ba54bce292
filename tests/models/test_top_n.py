"""models.base.top_n: the one-row path (a request) against a spelled-out definition."""

from __future__ import annotations

import numpy as np
import pytest

from models.base import stable_order_desc, top_n, top_n_row
from recsys.native import topk as native_topk

# every test here runs on the C top-k kernel and on the numpy path (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("topk_path")


def spelled_out(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Best score first, equal scores by id, -inf as id -1, padded to n."""
    order = np.lexsort((np.arange(len(scores)), -scores))[:n]
    top = scores[order].astype(np.float32)
    ids = np.where(np.isneginf(top), -1, order)
    pad = n - len(order)
    return np.r_[ids, [-1] * pad], np.r_[top, [-np.inf] * pad].astype(np.float32)


SIZES = [(20_000, 500), (5_000, 500), (600, 10), (100, 500), (1, 3)]


@pytest.mark.parametrize(("size", "n"), SIZES)
def test_one_row_matches_the_definition_with_ties_and_exclusions(size: int, n: int) -> None:
    rng = np.random.default_rng(size + n)
    for _ in range(10):
        scores = rng.integers(0, 40, size).astype(np.float32)  # plenty of ties
        scores[rng.random(size) < 0.2] = -np.inf  # excluded (seen) items
        ids, top = top_n_row(scores, n)
        want_ids, want_top = spelled_out(scores, n)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(top, want_top)
        assert ids.dtype == np.int64 and top.dtype == np.float32


def test_a_skewed_row_falls_back_to_sorting_every_item() -> None:
    # the sample's threshold lets fewer than n through: every item is sorted instead
    scores = np.zeros(40_000, np.float32)
    scores[0:2_000:10] = 1.0 + np.arange(200)  # 200 high scores, all on the sampling stride
    ids, top = top_n_row(scores, 500)
    want_ids, want_top = spelled_out(scores, 500)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(top, want_top)


def test_top_n_of_one_row_is_the_row_path_and_of_many_the_same_scores() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 9_000)).astype(np.float32)
    one_ids, one_top = top_n(scores[:1], 100)
    np.testing.assert_array_equal(one_ids[0], top_n_row(scores[0], 100)[0])
    many_ids, many_top = top_n(scores, 100)
    np.testing.assert_array_equal(many_top[0], one_top[0])  # distinct scores: same list
    np.testing.assert_array_equal(many_ids[0], one_ids[0])


EDGES = np.array(
    [0.0, -0.0, 1, -1, np.inf, -np.inf, 0.0, -0.0, 3e-38, -3e-38, 1e-45, -1e-45,
     np.finfo(np.float32).max, -np.finfo(np.float32).max],
    dtype=np.float32,
)  # fmt: skip


@pytest.mark.parametrize("size", [0, 1, 7, 1_000, 20_000])
def test_stable_order_is_the_stable_argsort_of_the_negated_values(size: int) -> None:
    rng = np.random.default_rng(size)
    for values in (
        rng.standard_normal(size).astype(np.float32),
        rng.integers(-3, 4, size).astype(np.float32),  # ties, and -0.0 beside 0.0 below
        rng.choice(EDGES, size),
    ):
        values[(values == 0) & (rng.random(size) < 0.5)] = -0.0
        want = np.argsort(-values, kind="stable")
        np.testing.assert_array_equal(stable_order_desc(values), want)
    np.testing.assert_array_equal(stable_order_desc(EDGES), np.argsort(-EDGES, kind="stable"))


def test_stable_order_falls_back_where_the_keys_would_not_hold() -> None:
    with_nan = np.array([1.0, np.nan, 2.0, 1.0], np.float32)  # NaN sorts last, as argsort has it
    np.testing.assert_array_equal(stable_order_desc(with_nan), [2, 0, 3, 1])
    doubles = np.array([0.5, 2.0, 0.5, 1.0])  # float64: no 32-bit key
    np.testing.assert_array_equal(stable_order_desc(doubles), [1, 3, 0, 2])


@pytest.mark.parametrize("k", [1, 50, 700, 3_000])
def test_top_k_of_scores_named_by_ids_is_the_top_of_the_row_in_id_order(
    topk_path: str, k: int
) -> None:
    # the exact scans' case: scores in another order than the ids (norm order), some unread
    rng = np.random.default_rng(k)
    n = 3_000
    for _ in range(5):
        order = rng.permutation(n)
        scores = rng.integers(0, 30, n).astype(np.float32)  # ties between far-apart ids
        scores[rng.random(n) < 0.1] = -np.inf
        read = int(rng.integers(k, n + 1)) if k <= n else n
        by_id = np.full(n, -np.inf, np.float32)
        by_id[order[:read]] = scores[:read]
        want = spelled_out(by_id, k)
        got = native_topk.top_k(scores[:read], k, ids=order[:read])
        if topk_path == "numpy":
            assert got is None
            continue
        assert got is not None
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_the_c_kernel_declines_what_only_numpy_decides(topk_path: str) -> None:
    if topk_path == "numpy":
        pytest.skip("the kernel's own refusals")
    with_nan = np.array([1.0, np.nan, 2.0], np.float32)
    assert native_topk.top_k(with_nan, 2) is None
    assert native_topk.order_desc(with_nan) is None
    assert native_topk.top_k(np.ones(3), 2) is None  # float64
    too_big = np.array([0, 2**32], np.int64)
    assert native_topk.top_k(np.ones(2, np.float32), 1, ids=too_big) is None


PATTERNS = ["ascending", "descending", "organ pipe", "sawtooth", "constant", "random"]


def patterned(pattern: str, size: int) -> np.ndarray:
    x = np.arange(size, dtype=np.float32)
    shapes = {
        "ascending": x,
        "descending": -x,
        "organ pipe": np.minimum(x, size - x),  # rises then falls: hard for median-of-three
        "sawtooth": x % 17,
        "constant": np.zeros(size, np.float32),
        "random": np.random.default_rng(size).normal(size=size).astype(np.float32),
    }
    return shapes[pattern].astype(np.float32)


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize(("size", "n"), [(20_003, 500), (4_099, 4_099), (1_187, 500), (57, 9)])
def test_rows_in_orders_that_trouble_quicksorts_give_the_definition(
    pattern: str, size: int, n: int
) -> None:
    # the kernel's partial quicksort, its fallback past a depth and its eight-wide filter
    # (sizes off a multiple of eight leave a tail) against the spelled-out order
    scores = patterned(pattern, size)
    ids, top = top_n_row(scores, n)
    want_ids, want_top = spelled_out(scores, n)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(top, want_top)
    order = stable_order_desc(scores)
    np.testing.assert_array_equal(order, np.argsort(-scores, kind="stable"))


def test_an_id_past_32_bits_is_refused_wherever_it_sits(topk_path: str) -> None:
    if topk_path == "numpy":
        pytest.skip("the kernel's own refusals")
    scores = np.zeros(20_003, np.float32)
    for at in (0, 7, 8, 19_999, 20_002):  # in an eight-wide group and in the tail
        ids = np.arange(20_003, dtype=np.int64)
        scores[:] = 0.0
        scores[at] = 1.0  # passes any threshold
        ids[at] = 2**32
        assert native_topk.top_k(scores, 10, ids=ids) is None
        ids[at] = -5
        assert native_topk.top_k(scores, 10, ids=ids) is None
