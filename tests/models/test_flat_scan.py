"""models.flat_scan: faiss's inner-product kernel block by block, against IndexFlatIP.search."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from models import flat_scan
from models.index import IndexConfig, VectorIndex


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
