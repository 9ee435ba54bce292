"""VectorIndex: exact answers, approximate recall, persistence, history exclusion, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.index import IndexConfig, VectorIndex, ivf_lists
from recsys.data.sequences import Sequences

ONE = {"threads": 1}  # the machine is shared: one OpenMP thread


def clustered(n: int, dim: int, seed: int, clusters: int = 50) -> np.ndarray:
    """(n, dim) float32 Gaussian blobs around fixed centers; the seed only picks the points."""
    centers = np.random.default_rng(1234).normal(size=(clusters, dim))
    rng = np.random.default_rng(seed)
    points = centers[rng.integers(clusters, size=n)] + 0.5 * rng.normal(size=(n, dim))
    return points.astype(np.float32)


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray]:
    return clustered(3000, 16, seed=0), clustered(40, 16, seed=1)


def test_exact_matches_numpy_argsort(small) -> None:
    vectors, queries = small
    index = VectorIndex(IndexConfig(kind="exact", **ONE)).build(vectors)
    ids, scores = index.search(queries, 25)
    assert ids.shape == scores.shape == (40, 25)
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    brute = queries @ vectors.T  # (B, N)
    expected = np.argsort(-brute, axis=1, kind="stable")[:, :25]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(brute, expected, 1), rtol=1e-5)


def test_auto_is_exact_below_the_threshold_and_approximate_above(small) -> None:
    vectors, _ = small
    assert VectorIndex(IndexConfig(**ONE)).build(vectors).kind_ == "exact"
    above = IndexConfig(exact_max_items=1000, auto_kind="hnsw", **ONE)
    assert VectorIndex(above).build(vectors).kind_ == "hnsw"
    ivf = VectorIndex(IndexConfig(exact_max_items=1000, **ONE)).build(vectors)
    assert ivf.kind_ == "ivf"
    # 3000 vectors cannot feed 256 centroids with ~39 points each.
    assert ivf._index.nlist == ivf_lists(3000, ivf.config) == 76


@pytest.mark.slow
def test_hnsw_recall_at_100_on_clustered_data() -> None:
    # Default HNSW settings, 20k x 64; about 4 s on one thread.
    vectors, queries = clustered(20_000, 64, seed=0), clustered(300, 64, seed=1)
    index = VectorIndex(IndexConfig(kind="hnsw", **ONE)).build(vectors)
    assert index.recall_against_exact(queries, 100) >= 0.95


def test_ivf_recall_and_exact_recall_is_one(small) -> None:
    vectors, queries = small
    ivf = VectorIndex(IndexConfig(kind="ivf", ivf_nlist=32, ivf_nprobe=8, **ONE)).build(vectors)
    assert ivf.recall_against_exact(queries, 50) >= 0.95
    exact = VectorIndex(IndexConfig(kind="exact", **ONE)).build(vectors)
    assert exact.recall_against_exact(queries, 50) == 1.0


@pytest.mark.parametrize("kind", ["exact", "hnsw", "ivf"])
def test_save_load_round_trip(kind: str, small, tmp_path: Path) -> None:
    vectors, queries = small
    cfg = IndexConfig(kind=kind, hnsw_ef_search=77, ivf_nlist=32, ivf_nprobe=5, **ONE)
    index = VectorIndex(cfg).build(vectors)
    path = index.save(tmp_path / "sub" / f"{kind}.faiss")
    loaded = VectorIndex.load(path, IndexConfig(**ONE))
    assert loaded.kind_ == kind and loaded.ntotal == len(vectors) and loaded.dim_ == 16
    if kind == "hnsw":
        assert (loaded.config.hnsw_ef_search, loaded.config.hnsw_m) == (77, cfg.hnsw_m)
    if kind == "ivf":
        assert (loaded.config.ivf_nlist, loaded.config.ivf_nprobe) == (32, 5)
    for a, b in zip(index.search(queries, 30), loaded.search(queries, 30), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.vectors(), vectors)


def test_a_served_exact_index_keeps_its_vectors_when_the_file_is_written_again(
    small, tmp_path: Path
) -> None:
    # an exact index is loaded memory-mapped; saving over its file replaces the file rather
    # than writing into the pages a server is reading
    vectors, queries = small
    path = VectorIndex(IndexConfig(kind="exact", **ONE)).build(vectors).save(tmp_path / "a.faiss")
    served = VectorIndex.load(path, IndexConfig(**ONE))
    before = served.search(queries, 20)
    VectorIndex(IndexConfig(kind="exact", **ONE)).build(vectors[::-1].copy()).save(path)
    for a, b in zip(before, served.search(queries, 20), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(served.vectors(), vectors)
    np.testing.assert_array_equal(VectorIndex.load(path).vectors(), vectors[::-1])
    assert not list(tmp_path.glob(".*.tmp"))  # no scratch file left behind


def test_load_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.faiss"):
        VectorIndex.load(tmp_path / "nope.faiss")


def history(rows: list[list[int]], n_items: int) -> Sequences:
    lengths = [len(r) for r in rows]
    items = np.array([i for r in rows for i in r], dtype=np.int32)
    zeros = np.zeros(len(items), np.int64)
    return Sequences(
        np.r_[0, np.cumsum(lengths)].astype(np.int64), items, zeros, zeros.astype(np.int8), n_items
    )


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_search_excluding_never_returns_excluded_and_returns_k(kind: str, small) -> None:
    vectors, queries = small
    index = VectorIndex(IndexConfig(kind=kind, **ONE)).build(vectors)
    plain, _ = index.search(queries[:3], 40)
    # Row 0 excludes its own top 30, row 1 nothing, row 2 a scattered set.
    rows = [plain[0, :30].tolist(), [], [int(i) for i in plain[2, ::3]]]
    ids, scores = index.search_excluding(queries[:3], 20, history(rows, len(vectors)))
    assert ids.shape == scores.shape == (3, 20)
    for row, banned in enumerate(rows):
        assert not set(ids[row]) & set(banned)
        assert (ids[row] >= 0).all() and len(set(ids[row])) == 20
        assert (np.diff(scores[row]) <= 0).all()
    if kind == "exact":  # exclusion then top-k is exactly full ranking with a mask
        brute = queries[:3] @ vectors.T
        for row, banned in enumerate(rows):
            brute[row, banned] = -np.inf
        np.testing.assert_array_equal(ids, np.argsort(-brute, axis=1, kind="stable")[:, :20])
    # Plain lists work as well as Sequences.
    again, _ = index.search_excluding(queries[:3], 20, [np.array(r) for r in rows])
    np.testing.assert_array_equal(again, ids)
    # One query at a time (the request path) gives the same rows.
    for row, banned in enumerate(rows):
        one, one_scores = index.search_excluding(queries[row : row + 1], 20, [np.array(banned)])
        np.testing.assert_array_equal(one[0], ids[row])
        np.testing.assert_array_equal(one_scores[0], scores[row])


def test_search_excluding_pads_when_the_catalog_runs_out() -> None:
    vectors = clustered(10, 4, seed=0)
    index = VectorIndex(IndexConfig(kind="exact", **ONE)).build(vectors)
    ids, scores = index.search_excluding(vectors[:2], 8, [np.arange(5), np.array([9])])
    assert ids.shape == (2, 8)
    assert (ids[0, :5] >= 0).all() and (ids[0, 5:] == -1).all()
    assert np.isneginf(scores[0, 5:]).all() and not set(ids[0]) & set(range(5))
    assert (ids[1] >= 0).all() and 9 not in ids[1]
    alone, _ = index.search_excluding(vectors[:1], 8, [np.arange(5)])  # the one-query path
    np.testing.assert_array_equal(alone[0], ids[0])
    big, big_scores = index.search(vectors[:1], 15)  # more than the catalog holds
    assert (big[0, 10:] == -1).all() and np.isneginf(big_scores[0, 10:]).all()


def test_bad_input_raises_naming_the_value(small) -> None:
    vectors, queries = small
    index = VectorIndex(IndexConfig(kind="exact", **ONE)).build(vectors)
    with pytest.raises(ValueError, match=r"shape \(40, 8\).*16-dim"):
        index.search(queries[:, :8], 5)
    with pytest.raises(ValueError, match=r"2-D.*shape \(16,\)"):
        index.search(queries[0], 5)
    for k in (0, -3):
        with pytest.raises(ValueError, match=rf"k must be a positive integer, got {k}"):
            index.search(queries, k)
    with pytest.raises(ValueError, match=r"got 2\.5"):
        index.search(queries, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dtype <U"):
        index.search(np.full((2, 16), "x"), 5)
    nan = queries.copy()
    nan[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"shape \(40, 16\) has 1 rows with NaN"):
        index.search(nan, 5)
    with pytest.raises(ValueError, match=r"exclude has 1 rows for 40 queries"):
        index.search_excluding(queries, 5, [np.array([1])])
    with pytest.raises(ValueError, match=r"shape \(0, 16\)"):
        VectorIndex().build(np.zeros((0, 16), np.float32))
    with pytest.raises(ValueError, match="kind must be"):
        IndexConfig(kind="annoy")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not built"):
        VectorIndex().search(queries, 5)


def test_float64_is_coerced(small) -> None:
    vectors, queries = small
    index = VectorIndex(IndexConfig(kind="exact", **ONE)).build(vectors.astype(np.float64))
    a, _ = index.search(queries.astype(np.float64), 10)
    b, _ = index.search(queries, 10)
    np.testing.assert_array_equal(a, b)


def test_gpu_request_without_a_gpu_is_refused(small, monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    vectors, _ = small
    if faiss.get_num_gpus() > 0:
        pytest.skip("a GPU is present; this checks the CPU-only refusal")
    with pytest.raises(RuntimeError, match="faiss sees no GPU"):
        VectorIndex(IndexConfig(kind="exact", use_gpu=True)).build(vectors)
    # "auto" and False stay on the CPU.
    assert not VectorIndex(IndexConfig(kind="exact", use_gpu="auto")).build(vectors).on_gpu_


def test_gpu_path_clones_flat_and_ivf_but_keeps_hnsw_on_cpu(
    small, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faiss

    vectors, queries = small
    cloned: list[str] = []

    def fake_clone(index):  # stands in for the GPU clone; searches like the CPU index
        cloned.append(type(index).__name__)
        return index

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", fake_clone, raising=False)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", lambda index: index, raising=False)
    exact = VectorIndex(IndexConfig(kind="exact", **ONE)).build(vectors)
    assert exact.on_gpu_ and cloned == ["IndexFlatIP"]
    assert exact.search(queries, 5)[0].shape == (40, 5)
    hnsw = VectorIndex(IndexConfig(kind="hnsw", **ONE)).build(vectors)
    assert not hnsw.on_gpu_ and cloned == ["IndexFlatIP"]
    with pytest.raises(ValueError, match="no GPU HNSW"):
        VectorIndex(IndexConfig(kind="hnsw", use_gpu=True)).build(vectors)
