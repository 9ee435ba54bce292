"""recsys.native.prefilter: the int8 copy's bounds keep every vector that can make the top k."""

from __future__ import annotations

import ctypes
from dataclasses import replace

import faiss
import numpy as np
import pytest

from models import flat_scan
from recsys import native
from recsys.native import prefilter

pytestmark = pytest.mark.skipif(
    prefilter._kernels() is None, reason="the C prefilter kernel is not built here"
)


def uneven(n: int, d: int, seed: int = 3) -> np.ndarray:
    """Collaborative-filtering-like vectors: lengths spread over orders of magnitude, some zero
    (untrained items) and exact duplicates (equal scores far apart in id)."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    vectors *= rng.lognormal(0.0, 1.5, size=(n, 1)).astype(np.float32)
    vectors[rng.random(n) < 0.1] = 0.0
    vectors[n // 2 : n // 2 + n // 20] = vectors[: n // 20]
    return vectors


def exact_scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """(N,) the float32 scores IndexFlatIP computes."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    scores, ids = index.search(query[None], len(vectors))
    out = np.empty(len(vectors), np.float32)
    out[ids[0]] = scores[0]
    return out


def coded_of(vectors: np.ndarray) -> tuple[prefilter.Coded, np.ndarray]:
    lengths = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
    order = np.argsort(-lengths, kind="stable")
    coded = prefilter.Coded.of(np.ascontiguousarray(vectors[order]), lengths[order])
    assert coded is not None
    return coded, order


def test_the_codes_miss_exactly_what_they_say() -> None:
    vectors = uneven(500, 37)
    coded, order = coded_of(vectors)
    ordered = vectors[order].astype(np.float64)
    assert np.abs(coded.codes.astype(np.int64)).max() <= 127
    rebuilt = coded.scale[:, None] * coded.codes
    np.testing.assert_allclose(np.linalg.norm(ordered - rebuilt, axis=1), coded.miss, atol=1e-12)
    zero = np.flatnonzero(coded.lengths == 0)
    assert len(zero) and (coded.scale[zero] == 1).all() and (coded.codes[zero] == 0).all()
    # a vector's largest component is coded at full scale: the codes use their range
    live = coded.lengths > 0
    assert (np.abs(coded.codes[live]).max(axis=1) == 127).all()


@pytest.mark.parametrize("d", [1, 15, 16, 33, 128, 200])
@pytest.mark.parametrize("k", [1, 40, 900])
def test_every_vector_of_the_exact_top_k_is_a_candidate(d: int, k: int) -> None:
    n = 3_000
    vectors = uneven(n, d, seed=d)
    coded, order = coded_of(vectors)
    rng = np.random.default_rng(k)
    for trial in range(6):
        query = rng.standard_normal(d).astype(np.float32) * np.float32(10.0 ** (trial - 3))
        picked = coded.candidates(query, k, min(n, max(k, 1_000)))
        assert picked is not None
        assert (np.diff(picked) > 0).all()  # increasing positions
        scores = exact_scores(vectors, query)
        kth = np.sort(scores)[-k]
        # everything scoring the k-th best or better (ties included) is kept
        must = np.flatnonzero(scores[order] >= kth)
        assert np.isin(must, picked).all()


def test_the_bounds_rule_out_most_of_a_skewed_catalog() -> None:
    vectors = uneven(20_000, 64)
    coded, _ = coded_of(vectors)
    query = np.random.default_rng(0).standard_normal(64).astype(np.float32)
    picked = coded.candidates(query, 100, 4_096)
    assert picked is not None and 100 <= len(picked) < 2_000


def test_a_zero_or_non_finite_query_is_declined() -> None:
    coded, _ = coded_of(uneven(200, 8))
    assert coded.candidates(np.zeros(8, np.float32), 5, 100) is None
    bad = np.ones(8, np.float32)
    bad[3] = np.nan
    assert coded.candidates(bad, 5, 100) is None
    bad[3] = np.inf
    assert coded.candidates(bad, 5, 100) is None
    assert coded.candidates(np.ones(8, np.float32), 101, 100) is None  # k beyond first


def test_the_scan_reads_only_the_candidates_and_gives_the_full_scan_s_answer() -> None:
    vectors = uneven(9_000, 32)
    index = faiss.IndexFlatIP(32)
    index.add(vectors)
    norms = flat_scan.NormOrder.of(index)
    assert norms is not None and norms.coded is not None
    queries = np.random.default_rng(5).standard_normal((6, 32)).astype(np.float32)
    queries[1] = 0.0  # declined by the kernel: the whole batch takes the float scan
    full = flat_scan.scan(index, queries, 300)
    for with_codes in (norms, replace(norms, coded=None)):
        got = flat_scan.scan(index, queries, 300, with_codes)
        np.testing.assert_array_equal(got[0], full[0])
        np.testing.assert_array_equal(got[1], full[1])
    query = queries[0]
    picked = norms.coded.candidates(query, 300, flat_scan.BLOCK)
    assert picked is not None and len(picked) < len(vectors) / 2
    # poison every float vector that is not a candidate: were one read, it would top the list
    poisoned = norms.vectors.copy()
    rest = np.setdiff1d(np.arange(len(vectors)), picked)
    poisoned[rest] = query * 1e6
    got = flat_scan.scan(index, query[None], 300, replace(norms, vectors=poisoned))
    np.testing.assert_array_equal(got[1], full[1][:1])


def test_without_the_kernel_the_order_has_no_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = uneven(2_000, 16)
    index = faiss.IndexFlatIP(16)
    index.add(vectors)
    monkeypatch.setattr(prefilter, "_kernels", lambda: None)
    norms = flat_scan.NormOrder.of(index)
    assert norms is not None and norms.coded is None
    query = np.ones((1, 16), np.float32)
    np.testing.assert_array_equal(flat_scan.scan(index, query, 50, norms)[1],
                                  flat_scan.scan(index, query, 50)[1])  # fmt: skip


@pytest.mark.parametrize("d", [1, 16, 31, 128, 161])
def test_both_dot_paths_give_the_exact_integer_sums(d: int) -> None:
    dots = native.function(
        "prefilter", "recsys_prefilter_dots",
        [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
         ctypes.c_void_p], ctypes.c_int,
    )  # fmt: skip
    rng = np.random.default_rng(d)
    codes = rng.integers(-127, 128, size=(300, d), dtype=np.int8)
    codes[0] = 127
    codes[1] = -127
    p = rng.integers(-127, 128, size=d).astype(np.int16)
    p[: d // 2] = 127
    want = codes.astype(np.int64) @ p.astype(np.int64)
    for wide in (0, 1):
        out = np.zeros(300, np.int32)
        if dots(wide, native.address(p), native.address(codes), 300, d, native.address(out)):
            continue  # no AVX2 on this CPU
        np.testing.assert_array_equal(out, want)


def bounds_of(coded: prefilter.Coded, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    kernel = native.function(
        "prefilter", "recsys_prefilter_bounds", [ctypes.c_int64] * 2 + [ctypes.c_void_p] * 7,
        ctypes.c_int,
    )  # fmt: skip
    n, d = coded.codes.shape
    lo, hi = np.empty(n), np.empty(n)
    query = np.ascontiguousarray(query, np.float32)
    assert kernel(n, d, *coded._addresses, native.address(query), native.address(lo),
                  native.address(hi)) == 0  # fmt: skip
    return lo, hi


def test_the_intervals_hold_the_scores_where_the_bound_is_tight() -> None:
    """Cauchy-Schwarz is tight where what the codes miss points along the other side: the
    query's miss along the vector, or the vector's miss along the query. An interval even a
    little narrower than the bound would miss the exact score there."""
    d = 16
    rng = np.random.default_rng(1)
    # the query's miss along the vector: q = p + 0.45 sign(y) with p on the code grid (t = 1),
    # y on its own grid (its codes miss nothing)
    signs = rng.choice([-1.0, 1.0], size=d)
    signs[0] = 0.0
    p = rng.integers(-126, 127, size=d).astype(np.float64)
    p[0] = 127.0
    query = (p + 0.45 * signs).astype(np.float32)
    along_query = signs.astype(np.float32)[None]  # max 1: scale 1/127, codes 127 sign(y)
    # the vector's miss along the query: q = 127 sign on the grid, y = s c + 0.45 s sign(q)
    grid = np.where(rng.random(d) < 0.5, -127.0, 127.0).astype(np.float32)
    c = rng.integers(-100, 101, size=d).astype(np.float64)
    c[0] = 127.0
    y = (c + 0.45 * np.sign(grid) * (np.arange(d) > 0)) / 127.0
    along_vector = y.astype(np.float32)[None]
    for q, vectors in ((query, along_query), (grid, along_vector)):
        vectors = np.concatenate([vectors, uneven(200, d)])
        coded, order = coded_of(vectors)
        lo, hi = bounds_of(coded, q)
        exact = exact_scores(vectors, q)[order]
        assert (lo <= exact).all() and (exact <= hi).all()
        tight = np.flatnonzero(order == 0)[0]
        middle = (lo[tight] + hi[tight]) / 2
        # the exact score sits in the interval's outer tenth: no room to narrow it
        assert abs(exact[tight] - middle) > 0.9 * (hi[tight] - middle)


def test_a_short_vector_past_the_first_block_still_makes_the_top_k() -> None:
    """The early stop may skip only vectors too short to reach the first block's bar: a short
    vector along the query, past the first block, outscores long ones at an angle to it."""
    d, k, first = 16, 5, 1_005
    rng = np.random.default_rng(2)
    query = np.zeros(d, np.float32)
    query[0] = 1.0
    angled = np.zeros((k, d), np.float32)
    angled[:, 0], angled[:, 1] = 1.0, 10.0  # long (10.05), score 1.0
    filler = np.zeros((first - k, d), np.float32)
    filler[:, 2:] = rng.standard_normal((first - k, d - 2))
    filler *= (15.0 / np.linalg.norm(filler, axis=1))[:, None]  # longer still, score 0
    along = np.zeros((1, d), np.float32)
    along[0, 0] = 1.05  # short, score 1.05: the best of all
    short = rng.standard_normal((3_000, d)).astype(np.float32) * 0.01
    vectors = np.concatenate([angled, filler, along, short])
    coded, order = coded_of(vectors)
    picked = coded.candidates(query, k, first)
    assert picked is not None
    assert np.flatnonzero(order == first)[0] in picked  # the short one along the query
    assert len(picked) < 50  # and the stop came soon after it


def test_a_catalog_of_equal_vectors_keeps_them_all() -> None:
    """Every lower end equals the bar: all vectors tie, and any k of them could be the top k."""
    vectors = np.tile(np.linspace(-1.0, 2.0, 24, dtype=np.float32), (2_000, 1))
    coded, _ = coded_of(vectors)
    query = np.random.default_rng(4).standard_normal(24).astype(np.float32)
    for k, first in ((1, 1), (10, 500), (2_000, 2_000)):
        picked = coded.candidates(query, k, first)
        assert picked is not None
        np.testing.assert_array_equal(picked, np.arange(2_000))
