"""One request's dense score row for the co-visitation and attribute sources, through
``rows.c``: the same float32 row as the sources' numpy expressions, in one call.

Each function returns None where the kernel is unavailable, declines the input (not int32
indices, not float32 values) or finds the history's entries few enough for the source's sparse
path (``models.sparse_topn.worth_sparse``): the caller then runs its numpy code, which decides.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys import native


@lru_cache(maxsize=1)
def _kernels() -> tuple[Any, Any] | None:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    covisit = native.function(
        "rows", "recsys_covisit_row", [ptr, ptr, ptr, i64, ptr, i64, ptr, ptr, ptr, i64, i64, ptr],
        ctypes.c_int,
    )  # fmt: skip
    attributes = native.function(
        "rows", "recsys_attributes_row",
        [ptr, ptr, ptr, i64, i64, ptr, ptr, i64, ptr, ptr, ptr, i64, i64, ptr, ptr, ptr, ptr],
        ctypes.c_int,
    )  # fmt: skip
    return None if covisit is None or attributes is None else (covisit, attributes)


def _csr(m: sp.csr_matrix) -> tuple[int, int, int] | None:
    """The addresses of a CSR matrix's arrays, None unless int32 indices and float32 values."""
    if m.indptr.dtype != np.int32 or m.indices.dtype != np.int32 or m.data.dtype != np.float32:
        return None
    if not (m.indptr.flags.c_contiguous and m.indices.flags.c_contiguous
            and m.data.flags.c_contiguous):  # fmt: skip
        return None
    return native.address(m.indptr), native.address(m.indices), native.address(m.data)


def covisit_row(
    matrix: sp.csr_matrix,
    rows: np.ndarray,
    weights: np.ndarray,
    popularity: np.ndarray,
    seen: np.ndarray | None,
    max_hits: int,
) -> np.ndarray | None:
    """(I,) float32: ``float32(bincount(the rows' entries scaled by weights)) + popularity``,
    ``seen`` at -inf. ``rows`` (R,) int64 of the (I, I) ``matrix``, ``weights`` (R,) float32,
    ``popularity`` (I,) float32. None: see the module (and where the rows hold ``max_hits``
    entries or fewer)."""
    kernels, csr = _kernels(), _csr(matrix)
    if kernels is None or csr is None or not _vector(popularity, np.float32):
        return None
    n_items = matrix.shape[0]
    if matrix.shape != (n_items, n_items) or len(popularity) != n_items:
        return None
    rows, weights, seen = _request(rows, weights, seen)
    out = np.empty(n_items, np.float32)
    done = kernels[0](*csr, n_items, native.address(rows), len(rows), native.address(weights),
                      native.address(popularity), _address(seen), len(seen), max_hits,
                      native.address(out))  # fmt: skip
    return out if done == 0 else None


def attributes_row(
    items: sp.csr_matrix,
    reach: np.ndarray,
    rows: np.ndarray,
    weights: np.ndarray,
    prior: np.ndarray,
    seen: np.ndarray | None,
    max_hits: int,
    postings: sp.csr_matrix | None = None,
) -> np.ndarray | None:
    """(I,) float32: ``(items @ float32(profile)) * prior``, ``seen`` at -inf, where the profile
    is the bincount of the ``rows`` (R,) of the (I, T) ``items`` matrix scaled by ``weights``
    (R,) float32. ``reach`` (T,) int64 counts each token's items: where the profile's tokens
    reach ``max_hits`` items or fewer, None (the sparse path's case; also see the module).

    ``postings``, the (T, I) transpose of ``items``, lets the kernel read only the profile's
    tokens' items (the same floats; see ``rows.c``). Pass it only where :func:`postings_ready`
    holds for ``items``."""
    kernels, csr = _kernels(), _csr(items)
    if kernels is None or csr is None or not _vector(prior, np.float32):
        return None
    n_items, n_tokens = items.shape
    if not _vector(reach, np.int64) or len(reach) != n_tokens or len(prior) != n_items:
        return None
    by_token = None
    if postings is not None and postings.shape == (n_tokens, n_items):
        by_token = _csr(postings)
    rows, weights, seen = _request(rows, weights, seen)
    out = np.empty(n_items, np.float32)
    done = kernels[1](*csr, n_items, n_tokens, native.address(reach), native.address(rows),
                      len(rows), native.address(weights), native.address(prior), _address(seen),
                      len(seen), max_hits, *(by_token or (None, None, None)),
                      native.address(out))  # fmt: skip
    return out if done == 0 else None


def postings_ready(items: sp.csr_matrix) -> bool:
    """Whether :func:`attributes_row` may run ``items``' product through its postings: each row
    stored in increasing column order with no repeats (so a token-by-token pass adds each
    row's terms in its own order) and every value finite (so the terms it skips, value times
    zero, are zeros)."""
    return bool(items.has_canonical_format and np.isfinite(items.data).all())


def _request(
    rows: np.ndarray, weights: np.ndarray, seen: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A request's rows (R,) int64, weights (R,) float32 and seen ids (H,) int64, contiguous
    (no seen ids: empty), held by the caller while the kernel reads them."""
    rows, weights = np.ascontiguousarray(rows, np.int64), np.ascontiguousarray(weights, np.float32)
    return rows, weights, np.ascontiguousarray(np.empty(0) if seen is None else seen, np.int64)


def _vector(array: np.ndarray, dtype: type) -> bool:
    return array.dtype == dtype and array.ndim == 1 and array.flags.c_contiguous


def _address(array: np.ndarray) -> int | None:
    return native.address(array) if len(array) else None
