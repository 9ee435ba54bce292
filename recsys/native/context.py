"""The ranking frame's history-match columns through ``context.c`` (the twin of the loop in
``recsys.ranking.features._history_columns``), every request of a batch in one call."""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

import numpy as np

from recsys import native


@lru_cache(maxsize=1)
def _kernel() -> Any:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    argtypes = [i64, *[ptr] * 8, ctypes.c_int, ptr, i64, i64]
    return native.function("context", "recsys_history_context", argtypes, ctypes.c_int)


def available() -> bool:
    return _kernel() is not None


def history_columns(
    indptr: np.ndarray,
    hist_codes: np.ndarray,
    hist_price: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    cand_codes: np.ndarray,
    cand_price: np.ndarray,
    cardinality: tuple[int, int, int],
    recency: bool,
    context: np.ndarray,
) -> bool:
    """Write columns 3.. of ``context`` (R, C) float32 (a view whose columns are adjacent) as
    ``_history_columns`` does; False (nothing to rely on written) where the kernel is
    unavailable or declines: the caller then runs the numpy loop, which reports bad input."""
    kernel = _kernel()
    if kernel is None or context.dtype != np.float32 or context.strides[1] != 4:
        return False
    if context.strides[0] % 4:  # the kernel steps rows in float32 elements
        return False
    ints = [np.ascontiguousarray(a, np.int64) for a in (indptr, hist_codes, starts, ends,
                                                         cand_codes, np.asarray(cardinality))]
    floats = [np.ascontiguousarray(a, np.float32) for a in (hist_price, cand_price)]
    indptr_, hist_codes_, starts_, ends_, cand_codes_, card = ints
    hist_price_, cand_price_ = floats
    done = kernel(
        len(starts_), native.address(indptr_), native.address(hist_codes_),
        native.address(hist_price_), native.address(starts_), native.address(ends_),
        native.address(cand_codes_), native.address(cand_price_), native.address(card),
        int(recency), int(context.ctypes.data), context.strides[0] // 4, context.shape[1],
    )  # fmt: skip
    return done == 0
