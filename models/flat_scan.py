"""Exact inner-product search of a few queries, block by block over a flat index's vectors.

``IndexFlatIP.search`` scans every vector once per query. A serving worker's micro-batch
(``serving/batching.py``) holds several queries, and at 128 dimensions a 20k-item catalog is
10 MB: read from memory once per query, that scan is most of a request's ALS time. Here faiss's
own inner-product kernel (``fvec_inner_products_ny``) runs over one block of vectors for every
query of the batch before moving on, so each block is read once per batch and stays in cache
meanwhile. Its floats are those of ``IndexFlatIP.search`` except at 4, 8 and 12 dimensions,
where it has kernels of its own that round differently (measured with faiss 1.15: up to about
1e-5 apart).

Stopping early (:class:`NormOrder`). ``q . y <= |q| |y|``, so once the k-th best score found
so far is above ``|q| |y|`` for every vector ``y`` not yet read, none of them can make the top
k. A scan given the vectors sorted by decreasing norm reads the first block, takes that block's
k-th best score, and reads on only as far as the norms allow. Collaborative-filtering factors
have very uneven norms (popular items' are long): on the 20k-item shop's ALS factors a request
reads about 60% of them. The bound holds for the float32 scores too (a margin covers their
rounding), so the top k and the order of equal scores are exactly those of the full scan.

Scoring only what can make the top k (:class:`recsys.native.prefilter.Coded`). With the C
kernel built, an int8 copy of the vectors in that order (a quarter of the bytes, integer dot
products) gives each vector an interval that holds its float32 score; only those whose interval
reaches the k-th largest lower end are scored by faiss's kernel, read in place by position
(``fvec_inner_products_by_idx``): about 1,200 of the 20k-item shop's for a 500-item list,
against 12,000 read by the early stop alone.

Each score is the same float faiss computes (one vector, one query, the same kernel), whatever
the batch and wherever the block starts, so a request gets the same list alone or batched.
Equal scores come out in id order (:func:`models.base.top_n_row`), where ``IndexFlatIP.search``
leaves their order open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from models.base import top_n_row
from recsys.native import topk as native_topk
from recsys.native.prefilter import Coded

MAX_QUERIES = 64  # above this (evaluation), faiss's own multi-threaded search is faster
BLOCK = 4096  # vectors per block: 2 MB at 128 dimensions, within a core's L2 and L3 share
# float32 scores may exceed |q| |y| by the kernel's rounding (about d * 2^-24 of it, 8e-6 at
# d = 128); the stop is taken this much further out, which costs nothing measurable
BOUND_MARGIN = 1e-3
# an early stop needs long and short vectors: where the median norm is above this share of the
# longest (normalized text embeddings), the bound would skip little and the copy is not made
UNEVEN_NORMS = 0.5


def can_scan(index: Any, n_queries: int) -> bool:
    """Whether :func:`scan` serves this search: a CPU flat inner-product index (not a GPU
    clone, an IVF or an HNSW one) and a request-sized batch."""
    import faiss

    return (
        n_queries <= MAX_QUERIES
        and type(index) is faiss.IndexFlatIP
        and hasattr(faiss, "fvec_inner_products_ny")
    )


@dataclass(frozen=True)
class NormOrder:
    """A flat index's vectors by decreasing norm, for scans that stop early (module doc).

    order: (N,) int64 row ids, the longest vector first.
    neg_norms: (N,) float64 ``-|y|`` in that order (ascending, for ``searchsorted``).
    vectors: (N, D) float32 C-contiguous, the index's rows in that order (a copy).
    coded: their int8 copy that bounds each score (:mod:`recsys.native.prefilter`), None
        without the C kernel.
    """

    order: np.ndarray
    neg_norms: np.ndarray
    vectors: np.ndarray
    coded: Coded | None = None

    @classmethod
    def of(cls, index: Any) -> NormOrder | None:
        """The order of a flat index's vectors; None where their norms are too even for an
        early stop to pay (see :data:`UNEVEN_NORMS`), not finite, or there are none."""
        vectors = _vectors(index)  # (N, D)
        if not len(vectors):
            return None
        norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))  # (N,)
        if not np.isfinite(norms).all() or np.median(norms) > UNEVEN_NORMS * norms.max():
            return None
        order = np.argsort(-norms, kind="stable")  # (N,)
        ordered = np.ascontiguousarray(vectors[order])  # (N, D)
        return cls(order, -norms[order], ordered, Coded.of(ordered, norms[order]))

    def stops(self, queries: np.ndarray, kth: np.ndarray) -> np.ndarray:
        """(B,) how many vectors, in this order, each query must read: every ``y`` with
        ``|q| |y|`` (plus the margin) reaching its k-th best score so far ``kth`` (B,)."""
        qn = np.sqrt(np.einsum("ij,ij->i", queries, queries, dtype=np.float64))  # (B,)
        stops = np.full(len(queries), len(self.order), dtype=np.int64)
        bounded = (qn > 0) & (kth > 0)  # a k-th best <= 0 is reached by any vector
        least = kth[bounded] / (qn[bounded] * (1.0 + BOUND_MARGIN))  # shortest norm still read
        stops[bounded] = np.searchsorted(self.neg_norms, -least, side="right")
        return stops


def scan(
    index: Any, queries: np.ndarray, k: int, norms: NormOrder | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (``k`` <= ntotal) of (B, D) C-contiguous float32 ``queries``: scores (B, k)
    float32 and ids (B, k) int64, best first, as ``index.search`` returns them. Given the
    index's :class:`NormOrder`, each query stops reading where no vector left can make its top
    ``k``; the answer is the same."""
    if norms is not None and norms.coded is not None:
        found = _scan_coded(norms, norms.coded, queries, k)
        if found is not None:
            return found
    n = int(index.ntotal)
    if norms is None:
        vectors, order, stops = _vectors(index), None, np.full(len(queries), n)
        scores = _scores(vectors, queries, 0, stops)  # (B, N)
    else:
        vectors, order = norms.vectors, norms.order
        first = min(n, max(BLOCK, k))  # holds each query's k best so far
        scores = _scores(vectors, queries, 0, np.full(len(queries), first))  # (B, N)
        kth = np.partition(scores[:, :first], first - k, axis=1)[:, first - k]  # (B,)
        stops = np.maximum(norms.stops(queries, kth.astype(np.float64)), first)  # (B,)
        _scores(vectors, queries, first, stops, scores)
    top_ids = np.empty((len(queries), k), np.int64)
    top_scores = np.empty((len(queries), k), np.float32)
    for b, (row, stop) in enumerate(zip(scores, stops.tolist(), strict=True)):
        if order is not None:
            # the vectors read, by id (those not read cannot make the top k)
            compiled = native_topk.top_k(row[:stop], k, ids=order[:stop])
            if compiled is not None:
                top_ids[b], top_scores[b] = compiled
                continue
            by_id = np.full(n, -np.inf, dtype=np.float32)  # (N,) back to id order
            by_id[order[:stop]] = row[:stop]
            row = by_id
        top_ids[b], top_scores[b] = top_n_row(row, k)
    return top_scores, top_ids


def _scan_coded(
    norms: NormOrder, coded: Coded, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`scan` through the int8 copy: each query's exact scores only for the vectors
    whose bounds let them make its top k (the same floats, so the same top k). None where the
    kernel declines a query (a zero or non-finite one)."""
    import faiss

    # the picked rows read where they lie, by position: each score is the same
    # fvec_inner_product as fvec_inner_products_ny's over a gathered (C, D) copy, bit for bit,
    # without writing ~1,200 rows (600 KB at 128 dimensions) a query
    kernel: Any = getattr(faiss, "fvec_inner_products_by_idx", None)  # not in faiss's stub
    if kernel is None:
        return None
    n, d = norms.vectors.shape
    first = min(n, max(BLOCK, k))
    top_ids = np.empty((len(queries), k), np.int64)
    top_scores = np.empty((len(queries), k), np.float32)
    vectors = faiss.swig_ptr(norms.vectors)  # (N, D) C-contiguous
    for b, query in enumerate(queries):
        picked = coded.candidates(query, k, first)  # (C,) int64 positions in the length order
        if picked is None:
            return None
        scores = np.empty(len(picked), np.float32)  # (C,)
        kernel(faiss.swig_ptr(scores), faiss.swig_ptr(query), vectors, faiss.swig_ptr(picked),
               d, 1, len(picked))  # fmt: skip
        ids = norms.order[picked]  # (C,)
        compiled = native_topk.top_k(scores, k, ids=ids)
        if compiled is None:
            by_id = np.full(n, -np.inf, dtype=np.float32)  # (N,) back to id order
            by_id[ids] = scores
            compiled = top_n_row(by_id, k)
        top_ids[b], top_scores[b] = compiled
    return top_scores, top_ids


def _vectors(index: Any) -> np.ndarray:
    """(N, D) float32 view of a flat index's own storage."""
    import faiss

    n, d = int(index.ntotal), int(index.d)
    return faiss.rev_swig_ptr(index.get_xb(), n * d).reshape(n, d)


def _scores(
    vectors: np.ndarray,
    queries: np.ndarray,
    start: int,
    stops: np.ndarray,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Each query's scores against ``vectors[start:stops[b]]``, block by block, written into
    ``out`` (B, N) at those columns (a new array when None; other columns left unset)."""
    import faiss

    kernel: Any = faiss.fvec_inner_products_ny  # type: ignore[attr-defined]  # not in its stub
    n, d = vectors.shape
    scores = np.empty((len(queries), n), np.float32) if out is None else out  # (B, N)
    ends = stops.tolist()
    for lo in range(start, max(ends, default=start), BLOCK):
        block = faiss.swig_ptr(vectors[lo:])
        for row, query, end in zip(scores, queries, ends, strict=True):
            hi = min(end, lo + BLOCK)
            if hi > lo:
                kernel(faiss.swig_ptr(row[lo:hi]), faiss.swig_ptr(query), block, d, hi - lo)
    return scores
