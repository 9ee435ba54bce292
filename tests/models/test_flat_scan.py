"""models.flat_scan: faiss's inner-product kernel block by block, against IndexFlatIP.search."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from models import flat_scan
from models.index import IndexConfig, VectorIndex

# every test here runs on the C top-k kernel and on the numpy path (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("topk_path")


def catalog(n: int = 9_000, d: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    vectors[rng.random(n) < 0.1] = 0.0  # never-trained items: many equal (zero) scores
    queries = rng.standard_normal((24, d)).astype(np.float32)
    queries[0] *= 1e-3  # a weak query: the zero-score ties reach its top k
    return vectors, queries


@pytest.mark.parametrize("block", [flat_scan.BLOCK, 1_000, 7])
def test_the_scores_are_faiss_search_s_and_ties_come_in_id_order(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flat_scan, "BLOCK", block)  # blocks that do not divide the catalog
    vectors, queries = catalog()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    k = 8_500  # deep enough to cut through the zero-score ties
    want_scores, want_ids = index.search(queries, k)
    scores, ids = flat_scan.scan(index, queries, k)
    np.testing.assert_array_equal(scores, want_scores)
    for row_ids, row_want, row_scores in zip(ids, want_ids, scores, strict=True):
        assert sorted(row_ids[row_scores > row_scores[-1]]) == sorted(
            row_want[row_scores > row_scores[-1]]
        )
        order = np.lexsort((row_ids, -row_scores))  # best first, equal scores by id
        np.testing.assert_array_equal(order, np.arange(k))


def test_a_query_gets_the_same_list_alone_and_in_any_batch() -> None:
    vectors, queries = catalog()
    served = VectorIndex(IndexConfig(kind="exact")).build(vectors)
    together = served.search(queries, 300)
    for b in range(len(queries)):
        alone = served.search(queries[b : b + 1], 300)
        np.testing.assert_array_equal(alone[0][0], together[0][b])
        np.testing.assert_array_equal(alone[1][0], together[1][b])
    pair = served.search(queries[[5, 2]], 300)
    np.testing.assert_array_equal(pair[0][1], together[0][2])


def test_only_request_sized_searches_of_a_flat_cpu_index_are_scanned() -> None:
    vectors, _ = catalog(n=2_000)
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    assert flat_scan.can_scan(flat, 1) and flat_scan.can_scan(flat, flat_scan.MAX_QUERIES)
    assert not flat_scan.can_scan(flat, flat_scan.MAX_QUERIES + 1)  # evaluation: faiss's own
    ivf = VectorIndex(IndexConfig(kind="ivf", ivf_nlist=16)).build(vectors)
    assert not flat_scan.can_scan(ivf._index, 1)


def uneven_catalog(n: int = 9_000, d: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Vectors with very uneven norms, as collaborative-filtering factors have (popular items'
    are long), zero vectors and exact duplicates among them (equal scores at every depth)."""
    vectors, queries = catalog(n, d)
    rng = np.random.default_rng(11)
    vectors *= rng.lognormal(0.0, 1.5, size=(n, 1)).astype(np.float32)
    vectors[n // 2 : n // 2 + 300] = vectors[:300]  # duplicates: ties between far-apart ids
    return vectors, queries


@pytest.mark.parametrize("k", [1, 50, 700, 4_500, 9_000])
@pytest.mark.parametrize("block", [flat_scan.BLOCK, 1_000])
def test_an_early_stopped_scan_gives_the_full_scan_s_answer(
    k: int, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flat_scan, "BLOCK", block)
    vectors, queries = uneven_catalog()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    norms = flat_scan.NormOrder.of(index)
    assert norms is not None
    full = flat_scan.scan(index, queries, k)
    stopped = flat_scan.scan(index, queries, k, norms)
    np.testing.assert_array_equal(stopped[0], full[0])  # the same float32 scores
    np.testing.assert_array_equal(stopped[1], full[1])  # and ids, equal scores by id
    for b in (0, 3):  # alone as in the batch
        alone = flat_scan.scan(index, queries[b : b + 1], k, norms)
        np.testing.assert_array_equal(alone[1][0], full[1][b])


def test_an_early_stopped_scan_leaves_the_short_vectors_unread() -> None:
    vectors, queries = uneven_catalog()
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    norms = flat_scan.NormOrder.of(index)
    assert norms is not None
    k, first = 100, flat_scan.BLOCK
    for query in queries[1:4]:
        # where the scan stops: the bound at the k-th best score of the first block
        head = flat_scan._scores(norms.vectors, query[None], 0, np.array([first]))[0, :first]
        kth = np.sort(head)[-k]
        stop = max(int(norms.stops(query[None], np.array([kth], np.float64))[0]), first)
        assert stop < len(vectors) * 0.75  # the bound rules out a good part of this catalog
        # poison what the bound rules out: were it read, it would top the list
        poisoned = flat_scan.NormOrder(norms.order, norms.neg_norms, norms.vectors.copy())
        poisoned.vectors[stop:] = query * 1e6
        got = flat_scan.scan(index, query[None], k, poisoned)
        np.testing.assert_array_equal(got[1], flat_scan.scan(index, query[None], k)[1])


def test_even_norms_keep_the_full_scan_and_the_index_uses_the_order_when_uneven() -> None:
    vectors, _ = catalog()
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    flat = faiss.IndexFlatIP(unit.shape[1])
    flat.add(unit)
    assert flat_scan.NormOrder.of(flat) is None  # normalized embeddings: nothing to skip
    assert VectorIndex(IndexConfig(kind="exact")).build(unit)._norms is None
    uneven, _ = uneven_catalog()
    assert VectorIndex(IndexConfig(kind="exact")).build(uneven)._norms is not None
    assert VectorIndex(IndexConfig(kind="ivf", ivf_nlist=16)).build(uneven)._norms is None
