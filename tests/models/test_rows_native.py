"""recsys.native.rows: the co-visitation and attribute sources' dense rows in C, bit for bit
the numpy expressions they stand for."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from models import sparse_topn
from models.attributes import AttributesModel
from models.base import CandidateModel, TrainingData
from models.covisit import CovisitModel
from recsys.data.sequences import Sequences, encode
from recsys.data.split import leave_one_out
from recsys.data.synth import generate
from recsys.native import rows as native_rows

pytestmark = pytest.mark.skipif(
    native_rows._kernels() is None, reason="the C rows kernel is not built here"
)


@pytest.fixture(scope="module")
def shop() -> tuple[TrainingData, Sequences]:
    ds = generate(users=800, items=400, seed=3)
    enc = encode(ds)
    split = leave_one_out(enc)
    items = ds.items.set_index("item_id").loc[list(enc.item_ids)].reset_index()
    histories = split.test.history.select(np.arange(60))
    return TrainingData(split.train, items), histories


@pytest.mark.parametrize("cls", [CovisitModel, AttributesModel])
@pytest.mark.parametrize("share", [0.0, 0.3, 1e9])  # every row dense, some, none
@pytest.mark.parametrize("exclude_seen", [True, False])
def test_a_source_s_lists_are_the_numpy_ones_bit_for_bit(
    shop: tuple[TrainingData, Sequences],
    monkeypatch: pytest.MonkeyPatch,
    cls: type[CandidateModel],
    share: float,
    exclude_seen: bool,
) -> None:
    monkeypatch.setattr(sparse_topn, "MAX_SPARSE_SHARE", share)
    data, histories = shop
    model = cls().fit(data)
    got = model.recommend(histories, 50, exclude_seen)
    monkeypatch.setattr(native_rows, "_kernels", lambda: None)
    want = model.recommend(histories, 50, exclude_seen)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1].tobytes() == want[1].tobytes()


def random_csr(rng: np.random.Generator, shape: tuple[int, int], nnz: int) -> sp.csr_matrix:
    """Values of many magnitudes, a column repeated within a row and unsorted columns: the
    kernels must add in stored order, as numpy and scipy do."""
    rows = np.sort(rng.integers(0, shape[0], nnz))
    cols = rng.integers(0, shape[1], nnz)
    data = (rng.standard_normal(nnz) * 10.0 ** rng.integers(-6, 6, nnz)).astype(np.float32)
    indptr = np.searchsorted(rows, np.arange(shape[0] + 1)).astype(np.int32)
    m = sp.csr_matrix((data, cols.astype(np.int32), indptr), shape=shape)
    assert not m.has_canonical_format
    return m


def test_the_covisit_row_is_the_bincount_of_the_weighted_rows() -> None:
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(5, 300))
        m = random_csr(rng, (n, n), int(rng.integers(n, 20 * n)))
        picked = rng.integers(0, n, int(rng.integers(1, 8)))  # repeats allowed
        weights = rng.random(len(picked)).astype(np.float32)
        pop = rng.random(n).astype(np.float32)
        seen = rng.integers(0, n, int(rng.integers(0, 10)))
        got = native_rows.covisit_row(m, picked, weights, pop, seen if trial % 2 else None, -1)
        assert got is not None
        at = sparse_topn.row_positions(m.indptr, picked)
        per_entry = np.repeat(weights, np.diff(m.indptr)[picked])
        want = np.bincount(m.indices[at], weights=m.data[at] * per_entry, minlength=n)
        want = want.astype(np.float32) + pop
        if trial % 2:
            want[seen] = -np.inf
        assert got.tobytes() == want.tobytes()


def test_the_attributes_row_is_scipy_s_product_with_the_profile() -> None:
    rng = np.random.default_rng(1)
    for _trial in range(20):
        n_items, n_tokens = int(rng.integers(5, 300)), int(rng.integers(3, 60))
        items = random_csr(rng, (n_items, n_tokens), int(rng.integers(n_items, 8 * n_items)))
        reach = np.diff(sp.csr_matrix(items.T).indptr).astype(np.int64)
        picked = rng.integers(0, n_items, int(rng.integers(1, 8)))
        weights = rng.random(len(picked)).astype(np.float32)
        prior = rng.random(n_items).astype(np.float32)
        seen = rng.integers(0, n_items, 4)
        got = native_rows.attributes_row(items, reach, picked, weights, prior, seen, -1)
        assert got is not None
        at = sparse_topn.row_positions(items.indptr, picked)
        per_entry = np.repeat(weights, np.diff(items.indptr)[picked])
        profile = np.bincount(items.indices[at], weights=items.data[at] * per_entry,
                              minlength=n_tokens)  # fmt: skip
        want = (items @ profile.astype(np.float32)) * prior
        want[seen] = -np.inf
        assert got.tobytes() == want.tobytes()


def test_the_attributes_row_through_the_postings_is_the_same_floats() -> None:
    rng = np.random.default_rng(4)
    through = 0  # trials whose tokens reach fewer entries than the matrix: the postings' pass
    for trial in range(40):
        n_items, n_tokens = int(rng.integers(5, 300)), int(rng.integers(3, 60))
        items = random_csr(rng, (n_items, n_tokens), int(rng.integers(n_items, 8 * n_items)))
        items.sum_duplicates()  # canonical: sorted columns, no repeats (negatives kept)
        assert native_rows.postings_ready(items)
        postings = sp.csr_matrix(items.T)
        reach = np.diff(postings.indptr).astype(np.int64)
        picked = rng.integers(0, n_items, int(rng.integers(1, 4)))  # a few tokens: few hits
        weights = rng.random(len(picked)).astype(np.float32)
        prior = rng.standard_normal(n_items).astype(np.float32)
        seen = rng.integers(0, n_items, 4) if trial % 2 else None
        args = (items, reach, picked, weights, prior, seen, -1)
        got = native_rows.attributes_row(*args, postings)
        want = native_rows.attributes_row(*args)
        assert got is not None and want is not None
        assert got.tobytes() == want.tobytes()
        tokens = np.unique(items.indices[sparse_topn.row_positions(items.indptr, picked)])
        through += int(reach[tokens].sum()) < items.nnz
    assert through >= 10


def test_postings_need_rows_in_order_without_repeats_and_finite_values() -> None:
    rng = np.random.default_rng(5)
    raw = random_csr(rng, (30, 10), 200)  # unsorted, with repeats
    assert not native_rows.postings_ready(raw)
    canonical = raw.copy()
    canonical.sum_duplicates()
    assert native_rows.postings_ready(canonical)
    canonical.data[3] = np.inf
    assert not native_rows.postings_ready(canonical)


def test_few_hits_are_left_to_the_sparse_path_and_odd_input_to_numpy() -> None:
    rng = np.random.default_rng(2)
    m = random_csr(rng, (50, 50), 400)
    picked, weights = np.array([3, 7]), np.ones(2, np.float32)
    pop = np.zeros(50, np.float32)
    hits = int(np.diff(m.indptr)[picked].sum())
    assert native_rows.covisit_row(m, picked, weights, pop, None, hits) is None
    assert native_rows.covisit_row(m, picked, weights, pop, None, hits - 1) is not None
    assert native_rows.covisit_row(m, np.array([-1]), weights[:1], pop, None, -1) is None
    assert native_rows.covisit_row(m, np.array([50]), weights[:1], pop, None, -1) is None
    wide = sp.csr_matrix(m, dtype=np.float64)
    assert native_rows.covisit_row(wide, picked, weights, pop, None, -1) is None
    assert native_rows.covisit_row(m, picked, weights, pop.astype(np.float64), None, -1) is None
    long_ids = m.copy()
    long_ids.indices = long_ids.indices.astype(np.int64)
    assert native_rows.covisit_row(long_ids, picked, weights, pop, None, -1) is None
    reach = np.diff(sp.csr_matrix(m.T).indptr).astype(np.int64)
    tokens_hit = int(reach[np.unique(m.indices[sparse_topn.row_positions(m.indptr, picked)])].sum())
    args = (m, reach, picked, weights, pop)
    assert native_rows.attributes_row(*args, None, tokens_hit) is None
    assert native_rows.attributes_row(*args, None, tokens_hit - 1) is not None


def test_mismatched_shapes_are_left_to_numpy() -> None:
    rng = np.random.default_rng(3)
    square = random_csr(rng, (40, 40), 300)
    picked, weights = np.array([1, 2]), np.ones(2, np.float32)
    short, full = np.zeros(39, np.float32), np.zeros(40, np.float32)
    assert native_rows.covisit_row(square, picked, weights, short, None, -1) is None
    assert native_rows.covisit_row(square, picked, weights, full, None, -1) is not None
    wide = random_csr(rng, (40, 50), 300)
    assert native_rows.covisit_row(wide, picked, weights, full, None, -1) is None
    items = random_csr(rng, (40, 12), 200)
    reach = np.diff(sp.csr_matrix(items.T).indptr).astype(np.int64)
    prior = np.ones(40, np.float32)
    assert native_rows.attributes_row(items, reach[:-1], picked, weights, prior, None, -1) is None
    assert native_rows.attributes_row(items, reach, picked, weights, prior[:-1], None, -1) is None
    assert native_rows.attributes_row(items, reach, picked, weights, prior, None, -1) is not None
