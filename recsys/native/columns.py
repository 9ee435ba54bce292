"""The tree ranker's input matrix through ``columns.c`` (``models.lgbm_ranker._columns``'s
twin): dense columns, kept sparse codes, missing-value stand-ins and mantissa rounding in one
pass. None where the kernel is unavailable; the caller then runs its numpy path."""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

import numpy as np

from recsys import native


@lru_cache(maxsize=1)
def _kernel() -> Any:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    argtypes = [i64, i64, i64, ptr, ptr, i64, ptr, ctypes.c_float, ctypes.c_int, ptr]
    return native.function("columns", "recsys_ranker_columns", argtypes, None)


@lru_cache(maxsize=16)
def _kept(keep: tuple[int, ...]) -> tuple[np.ndarray, int]:
    columns = np.asarray(keep, dtype=np.int64)
    return columns, int(columns.ctypes.data)  # held together: the address lives as long


def ranker_columns(
    dense: np.ndarray, sparse: np.ndarray, keep: tuple[int, ...], missing: float, bits: int
) -> np.ndarray | None:
    """(N, D + K) float32: ``dense`` (N, D) float32, then ``sparse`` (N, S) int64 columns
    ``keep`` as float32; NaN and -inf -> ``missing``, +inf -> ``-missing``; each value rounded
    half to even to ``bits`` significant bits. None: see the module."""
    kernel = _kernel()
    if kernel is None or dense.dtype != np.float32 or sparse.dtype != np.int64:
        return None
    dense, sparse = np.ascontiguousarray(dense), np.ascontiguousarray(sparse)
    n, d = dense.shape
    where = _kept(keep)[1]  # the array stays alive in the cache beside its address
    x = np.empty((n, d + len(keep)), np.float32)  # (N, D + K)
    kernel(n, d, sparse.shape[1], native.address(dense), native.address(sparse), len(keep),
           where, missing, 24 - bits, native.address(x))  # fmt: skip
    return x
