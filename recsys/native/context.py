"""The ranking frame through ``context.c``, every request of a batch in one call: the columns
from the candidates and stored features (:func:`frame_rows`, the twin of
``recsys.ranking.features._candidate_columns``) and the history-match columns
(:func:`history_columns`, the twin of the loop in ``recsys.ranking.features._history_columns``).
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from recsys import native


@lru_cache(maxsize=1)
def _kernel() -> Any:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    argtypes = [i64, *[ptr] * 8, ctypes.c_int, ptr, i64, i64]
    return native.function("context", "recsys_history_context", argtypes, ctypes.c_int)


@lru_cache(maxsize=1)
def _rows_kernel() -> Any:
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    argtypes = [i64, i64, i64, i64, *[ptr] * 6, i64, ptr, i64, ptr, ptr, ptr, ptr, i64, i64, ptr,
                i64, i64, ptr, ptr, ptr, ptr]  # fmt: skip
    return native.function("context", "recsys_frame_rows", argtypes, ctypes.c_int)


@lru_cache(maxsize=16)
def _held(values: tuple[int, ...]) -> tuple[np.ndarray, int]:
    array = np.asarray(values, dtype=np.int64)
    return array, native.address(array)  # held together: the address lives as long


class FrameColumns(NamedTuple):
    """Where a frame's candidate columns go (``recsys.ranking.features.build_frame``)."""

    dense: np.ndarray  # (R, D) float32: per-source columns, item features from item_at, user's
    item_at: int
    context: np.ndarray  # (R, C) float32 view, columns adjacent: fused, position, n_sources, ...
    sparse: np.ndarray  # (R, 4) int64
    cand_codes: np.ndarray  # (R, 3) int64: category, top category, brand
    starts: np.ndarray  # (B,) int64: each request's first row
    ends: np.ndarray  # (B,) int64: one past its last


def available() -> bool:
    return _kernel() is not None


def frame_rows(
    b_idx: np.ndarray,
    slot: np.ndarray,
    items: np.ndarray,
    ranks: np.ndarray,
    scores: np.ndarray,
    fused: np.ndarray,
    item_feats: np.ndarray,
    user_feats: np.ndarray,
    code_cols: tuple[int, int, int],
    cardinality: tuple[int, ...],
    out: FrameColumns,
) -> bool:
    """Write ``out`` as ``_candidate_columns`` does. False (nothing written) where the kernel is
    unavailable or declines, or an array is not of the kernel's type: the caller then runs the
    numpy path."""
    dense, item_at, context, sparse, cand_codes, starts, ends = out
    kernel = _rows_kernel()
    if kernel is None or len(cardinality) != 4:
        return False
    # np.nonzero's two index arrays are strided views of one (R, 2) array
    b_idx, slot = np.ascontiguousarray(b_idx), np.ascontiguousarray(slot)
    typed = (
        (b_idx, np.int64), (slot, np.int64), (items, np.int64), (ranks, np.int32),
        (scores, np.float32), (fused, np.float32), (item_feats, np.float32),
        (user_feats, np.float32), (dense, np.float32), (sparse, np.int64),
        (cand_codes, np.int64), (starts, np.int64), (ends, np.int64),
    )  # fmt: skip
    if any(a.dtype != t or not a.flags.c_contiguous for a, t in typed):
        return False
    if context.dtype != np.float32 or context.strides[1] != 4 or context.strides[0] % 4:
        return False
    (B, N, S), R = ranks.shape, len(b_idx)
    shapes = (
        scores.shape == (B, N, S), fused.shape == (B, N), slot.shape == items.shape == (R,),
        item_feats.shape[0] == R, user_feats.shape[0] == B, dense.shape[0] == R,
        context.shape[0] == R, sparse.shape == (R, 4), cand_codes.shape == (R, 3),
        starts.shape == ends.shape == (B,),
    )  # fmt: skip
    if not all(shapes) or item_feats.ndim != 2 or user_feats.ndim != 2:
        return False
    done = kernel(
        R, B, N, S, *(native.address(a) for a in (b_idx, slot, items, ranks, scores, fused)),
        item_feats.shape[1], native.address(item_feats), user_feats.shape[1],
        native.address(user_feats), _held(code_cols)[1], _held(tuple(cardinality))[1],
        native.address(dense), dense.shape[1], item_at, int(context.ctypes.data),
        context.strides[0] // 4, context.shape[1], native.address(sparse),
        native.address(cand_codes), native.address(starts), native.address(ends),
    )  # fmt: skip
    return done == 0


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
