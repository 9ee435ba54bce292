"""Top k of one score row through ``topk.c``: the answer of ``models.base.top_n_row`` (and, with
``k`` the row's length, of ``stable_order_desc``), bit for bit, in one C call.

Each function returns None where the kernel is unavailable (``RECSYS_NATIVE=off``, no
compiler) or declines the row (a NaN score; an id that could make the top k but is negative or
does not fit 32 bits): the caller then runs its numpy path, which decides those cases.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

import numpy as np

from recsys import native

MAX_ID = 2**32 - 1  # ids share a 64-bit sort key with the score's 32 bits


@lru_cache(maxsize=1)
def _kernel() -> Any:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    return native.function(
        "topk", "recsys_top_k", [i64, ptr, ptr, i64, ctypes.c_int, ptr, ptr], ctypes.c_int
    )


def portable_only(on: bool) -> bool:
    """Make later calls take the kernel's portable loops (as on a CPU without AVX2), or the
    fastest the CPU has again: for the tests of both. False where the kernel is unavailable."""
    setter = native.function("topk", "recsys_top_k_portable", [ctypes.c_int], None)
    if setter is None:
        return False
    setter(int(on))
    return True


def top_k(
    scores: np.ndarray, k: int, ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Ids (k,) int64 and scores (k,) float32 of the best ``k`` of (n,) float32 ``scores``,
    best first, equal scores by id; ``ids`` (n,) int64 names each score's item (default: its
    position). Padded with -1 / -inf beyond n; a -inf score's id is -1. None: see the module."""
    kernel = _kernel()
    n = len(scores)
    if kernel is None or scores.dtype != np.float32 or n > MAX_ID:
        return None
    scores = np.ascontiguousarray(scores)
    out_ids = np.empty(k, np.int64)
    out_scores = np.empty(k, np.float32)
    where = None if ids is None else native.address(np.ascontiguousarray(ids, np.int64))
    done = kernel(n, native.address(scores), where, k, 1, native.address(out_ids),
                  native.address(out_scores))  # fmt: skip
    return (out_ids, out_scores) if done == 0 else None


def order_desc(values: np.ndarray) -> np.ndarray | None:
    """Positions of (n,) float32 ``values``, best first, equal values in position order
    (``np.argsort(-values, kind="stable")``); None: see the module."""
    kernel = _kernel()
    n = len(values)
    if kernel is None or values.dtype != np.float32 or values.ndim != 1 or n > MAX_ID:
        return None
    values = np.ascontiguousarray(values)
    out_ids = np.empty(n, np.int64)
    done = kernel(n, native.address(values), None, n, 0, native.address(out_ids), None)
    return out_ids if done == 0 else None


@lru_cache(maxsize=1)
def _blend_kernel() -> Any:
    i64, ptr, f64 = ctypes.c_int64, ctypes.c_void_p, ctypes.c_double
    return native.function(
        "topk", "recsys_blend_order", [i64, ptr, ptr, f64, f64, ptr, ptr, ptr], ctypes.c_int
    )


def blend_order(
    slot_ids: np.ndarray, row_scores: np.ndarray, weight: float, damping: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """One request's ranked list: (N,) int64 ``slot_ids`` (-1: empty) scored by (R,) float32
    ``row_scores`` over the filled slots, with ``weight`` > 0 rank-blended with the slot order
    (``recsys.ranking.ranker.blend_scores``, RRF damping ``damping``). The slots best first
    (``order``), their ids and scores (-inf where empty), as ``reorder`` gives them; None: see
    the module (a NaN score is left to numpy), or where the scores do not fill the slots."""
    kernel = _blend_kernel()
    if kernel is None or slot_ids.dtype != np.int64 or row_scores.dtype != np.float32:
        return None
    slot_ids, row_scores = np.ascontiguousarray(slot_ids), np.ascontiguousarray(row_scores)
    n = len(slot_ids)
    if slot_ids.ndim != 1 or row_scores.shape != (int((slot_ids >= 0).sum()),) or n > MAX_ID:
        return None
    order, ids = np.empty(n, np.int64), np.empty(n, np.int64)
    scores = np.empty(n, np.float32)
    done = kernel(n, native.address(slot_ids), native.address(row_scores), weight, damping,
                  native.address(order), native.address(ids), native.address(scores))  # fmt: skip
    return (order, ids, scores) if done == 0 else None
