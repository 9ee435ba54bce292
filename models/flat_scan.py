"""Exact inner-product search of a few queries, block by block over a flat index's vectors.

``IndexFlatIP.search`` scans every vector once per query. A serving worker's micro-batch
(``serving/batching.py``) holds several queries, and at 128 dimensions a 20k-item catalog is
10 MB: read from memory once per query, that scan is most of a request's ALS time. Here faiss's
own inner-product kernel (``fvec_inner_products_ny``, the one ``IndexFlatIP`` uses) runs over
one block of vectors for every query of the batch before moving on, so each block is read once
per batch and stays in cache meanwhile.

Each score is the same float faiss computes (one vector, one query, the same kernel), whatever
the batch and wherever the block starts, so a request gets the same list alone or batched.
Equal scores come out in id order (:func:`models.base.top_n_row`), where ``IndexFlatIP.search``
leaves their order open.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.base import top_n_row

MAX_QUERIES = 64  # above this (evaluation), faiss's own multi-threaded search is faster
BLOCK = 4096  # vectors per block: 2 MB at 128 dimensions, within a core's L2 and L3 share


def can_scan(index: Any, n_queries: int) -> bool:
    """Whether :func:`scan` serves this search: a CPU flat inner-product index (not a GPU
    clone, an IVF or an HNSW one) and a request-sized batch."""
    import faiss

    return (
        n_queries <= MAX_QUERIES
        and type(index) is faiss.IndexFlatIP
        and hasattr(faiss, "fvec_inner_products_ny")
    )


def scan(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (``k`` <= ntotal) of (B, D) C-contiguous float32 ``queries``: scores (B, k)
    float32 and ids (B, k) int64, best first, as ``index.search`` returns them."""
    import faiss

    kernel: Any = faiss.fvec_inner_products_ny  # type: ignore[attr-defined]  # not in its stub
    n, d = int(index.ntotal), int(index.d)
    vectors = faiss.rev_swig_ptr(index.get_xb(), n * d).reshape(n, d)  # (N, D) the index's
    scores = np.empty((len(queries), n), np.float32)  # (B, N)
    for lo in range(0, n, BLOCK):
        hi = min(n, lo + BLOCK)
        block = faiss.swig_ptr(vectors[lo:hi])
        for row, query in zip(scores, queries, strict=True):
            kernel(faiss.swig_ptr(row[lo:hi]), faiss.swig_ptr(query), block, d, hi - lo)
    top_ids = np.empty((len(queries), k), np.int64)
    top_scores = np.empty((len(queries), k), np.float32)
    for b, row in enumerate(scores):
        top_ids[b], top_scores[b] = top_n_row(row, k)
    return top_scores, top_ids
