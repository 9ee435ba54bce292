"""The vectors that can make a query's exact inner-product top k, through ``prefilter.c``.

An int8 copy of the vectors (a quarter of the float32 bytes) and, per vector, an exact bound
on what the copy misses give each vector an interval that holds its float32 score. Only the
vectors whose interval reaches the k-th largest lower end can make the top k; the caller
scores those exactly (``models/flat_scan.py``), so the top k is the full scan's, ties and all.
None where the kernel is unavailable or declines; the caller then scans every vector.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from recsys import native


@lru_cache(maxsize=1)
def _kernels() -> tuple[Any, Any] | None:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    codes = native.function(
        "prefilter", "recsys_prefilter_codes", [i64, i64, ptr, ptr, ptr, ptr], None
    )
    argtypes = [i64, i64, ptr, ptr, ptr, ptr, ptr, i64, i64, ptr]
    select = native.function("prefilter", "recsys_prefilter", argtypes, i64)
    return None if codes is None or select is None else (codes, select)


@dataclass(frozen=True)
class Coded:
    """An int8 copy of (N, D) vectors sorted by decreasing length.

    codes: (N, D) int8, ``vectors ~ scale[:, None] * codes``.
    scale: (N,) float64.
    miss: (N,) float64 ``|vectors - scale * codes|``, exact.
    lengths: (N,) float64 ``|vectors|``, decreasing.
    """

    codes: np.ndarray
    scale: np.ndarray
    miss: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, vectors: np.ndarray, lengths: np.ndarray) -> Coded | None:
        """The copy of (N, D) float32 C-contiguous ``vectors`` whose lengths (N,) float64 are
        ``lengths``, decreasing; None where the kernel is unavailable."""
        kernels = _kernels()
        if kernels is None:
            return None
        vectors = np.ascontiguousarray(vectors, np.float32)  # held while the kernel reads it
        n, d = vectors.shape
        codes = np.empty((n, d), np.int8)
        scale, miss = np.empty(n), np.empty(n)
        kernels[0](n, d, native.address(vectors), native.address(codes), native.address(scale),
                   native.address(miss))  # fmt: skip
        lengths = np.ascontiguousarray(lengths, np.float64)
        return cls(codes, scale, miss, lengths)

    def candidates(self, query: np.ndarray, k: int, first: int) -> np.ndarray | None:
        """Positions (C,) int64, increasing, of the vectors that can make the top ``k`` of
        (D,) float32 ``query``: every vector left out scores below the k-th best. ``first``
        (k <= first <= N) vectors are always bounded before the early stop by length. None
        where the kernel is unavailable or declines (a zero or non-finite query)."""
        kernels = _kernels()
        if kernels is None:
            return None
        n, d = self.codes.shape
        query = np.ascontiguousarray(query, np.float32)
        out = np.empty(n, np.int64)
        count = kernels[1](n, d, *self._addresses, native.address(query), k, first,
                           native.address(out))  # fmt: skip
        return None if count < 0 else out[:count]

    @cached_property
    def _addresses(self) -> tuple[int, int, int, int]:
        """The arrays' addresses, taken once: the arrays live as long as this object."""
        codes, scale, miss, lengths = self.codes, self.scale, self.miss, self.lengths
        return (native.address(codes), native.address(scale), native.address(miss),
                native.address(lengths))  # fmt: skip
