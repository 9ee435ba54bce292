"""The contract every candidate model follows, and the shared top-n machinery.

A model is fitted on training :class:`~recsys.data.sequences.Sequences` and answers for a batch
of user histories: ``score`` gives dense scores over the whole catalog (what full-ranking
evaluation needs), ``recommend`` the top ``n`` ids and scores with the history excluded, and
``similar_items`` the nearest items to given items.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from recsys.data.sequences import Sequences
from recsys.data.split import EvalSet
from recsys.native import topk as native_topk


@dataclass(frozen=True)
class TrainingData:
    """What a model may learn from: training sequences, plus catalog rows aligned by index."""

    sequences: Sequences
    items: pd.DataFrame | None = None  # row i describes item index i, when available

    @property
    def n_items(self) -> int:
        return self.sequences.n_items


class CandidateModel(ABC):
    """Batched verbs over integer item indexes. Subclasses implement ``fit`` and ``score``."""

    name: str = "model"
    # True when fit reads the catalog alone, never the interactions: a refit on other
    # interactions (recsys.ranking.folds) can share the fitted model instead.
    catalog_only: bool = False

    @abstractmethod
    def fit(self, data: TrainingData, valid: EvalSet | None = None) -> Self:
        """Learn from ``data``. ``valid`` (held-out targets the model does not train on) is for
        the models that stop early; the others take it and ignore it, so callers need not know
        which model they fit."""

    @abstractmethod
    def score(self, histories: Sequences) -> np.ndarray:
        """(B, I) float32 scores, higher is better, for every catalog item."""

    def refit_config(self) -> Any:
        """The config that refits this fitted model on other data once validation is spent
        (recsys.ranking.folds): its own; a model that stops early fixes the epochs it ran."""
        return getattr(self, "config", None)

    def config_dict(self) -> dict[str, Any]:
        config = getattr(self, "config", None)
        return dict(vars(config)) if config is not None else {}

    def recommend(
        self, histories: Sequences, n: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` per history: ids (B, n) int64 and scores (B, n) float32, best first.

        Rows with fewer than ``n`` eligible items are padded with id ``-1`` and score ``-inf``.
        """
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        scores = self.score(histories).astype(np.float32, copy=True)  # (B, I)
        if exclude_seen:
            mask_history(scores, histories)
        return top_n(scores, n)

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Items most likely next after each single item (the item itself excluded)."""
        items = np.asarray(items, dtype=np.int32)
        indptr = np.arange(len(items) + 1, dtype=np.int64)
        one_item = Sequences(
            indptr,
            items,
            np.zeros(len(items), np.int64),
            np.zeros(len(items), np.int8),
            self._n_items(),
        )
        return self.recommend(one_item, n, exclude_seen=True)

    def _n_items(self) -> int:
        n_items = getattr(self, "n_items_", None)
        if n_items is None:
            raise RuntimeError(f"{self.name} is not fitted; call fit() first")
        return int(n_items)


def mask_history(scores: np.ndarray, histories: Sequences) -> None:
    """Set each row's already-seen items to ``-inf`` in place."""
    rows = histories.user_index()
    scores[rows, histories.items] = -np.inf


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top ``n`` of (B, I) scores, sorted; ``-inf`` entries become id ``-1``."""
    if scores.shape[0] == 1 and n > 0:  # a request: see top_n_row
        row_ids, row_scores = top_n_row(scores[0], n)
        return row_ids[None, :], row_scores[None, :]
    n_eff = min(n, scores.shape[1])
    part = np.argpartition(-scores, n_eff - 1, axis=1)[:, :n_eff]  # (B, n_eff) unordered
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top_scores = np.take_along_axis(part_scores, order, axis=1)
    ids[np.isneginf(top_scores)] = -1
    if n_eff < n:
        pad = n - n_eff
        ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
        top_scores = np.pad(top_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    return ids, top_scores.astype(np.float32)


@runtime_checkable
class VectorModel(Protocol):
    """A model whose score is an inner product, so a vector index can serve its retrieval."""

    def query_vectors(self, histories: Sequences) -> np.ndarray:
        """(B, D) float32, one query per history."""
        ...

    def item_vectors(self) -> np.ndarray:
        """(I, D) float32; ``score = query_vectors(h) @ item_vectors().T``."""
        ...


def top_n_row(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``n`` of one (I,) score row as :func:`top_n` gives it, equal scores in id order.

    A threshold read off a strided sample keeps about ``2n`` items, and only those are sorted:
    about half the cost of a partition of the whole row for a 500-item list of 20k. Should
    fewer than ``n`` pass it (scores far from uniform over the row), the threshold is the
    row's own n-th best score instead. The C kernel (``recsys/native/topk.c``), where built,
    does the same in one call and gives the same answer.
    """
    compiled = native_topk.top_k(scores, n)
    if compiled is not None:
        return compiled
    size = len(scores)
    m = min(n, size)
    keep: np.ndarray | None = None
    if 8 * m < size:
        stride = size // (8 * m)
        sample = scores[::stride]  # (~8m,)
        r = len(sample) - 1 - min(len(sample) - 1, 2 * (m // stride) + 8)
        threshold = np.partition(sample, r)[r]  # ~the 2m-th best score of the row
        keep = np.flatnonzero(scores >= threshold)
        if len(keep) < m:
            keep = None
    if keep is None:
        keep = np.flatnonzero(scores >= np.partition(scores, size - m)[size - m])
        if len(keep) < m:  # NaN scores compare false: sort them all
            keep = np.arange(size)
    vals = scores[keep]
    order = stable_order_desc(vals)[:m]  # stable over ascending ids: ties by id
    ids, top = keep[order].astype(np.int64), vals[order].astype(np.float32)
    ids[np.isneginf(top)] = -1
    if m < n:
        ids = np.pad(ids, (0, n - m), constant_values=-1)
        top = np.pad(top, (0, n - m), constant_values=-np.inf)
    return ids, top


def stable_order_desc(values: np.ndarray) -> np.ndarray:
    """Positions of 1-D ``values``, best first, equal values in position order: exactly
    ``np.argsort(-values, kind="stable")``, at about half its cost for float32.

    Each float32 becomes an order-preserving unsigned integer (its bits, flipped so that
    unsigned order is float order; -0.0 counted as 0.0), packed with its position into one
    64-bit key. The keys are distinct, so numpy's plain (SIMD) sort of them is stable by
    construction. Other dtypes, and rows holding NaN, take the stable argsort itself. The C
    kernel (``recsys/native/topk.c``), where built, sorts the same keys in one call.
    """
    compiled = native_topk.order_desc(values)
    if compiled is not None:
        return compiled
    if values.dtype != np.float32 or values.ndim != 1 or np.isnan(values).any():
        return np.argsort(-values, kind="stable")
    bits = (values + np.float32(0.0)).view(np.int32).astype(np.int64)  # (N,) -0.0 -> 0.0
    ascending = np.where(bits >= 0, bits | (1 << 31), ~bits & 0xFFFFFFFF)  # (N,) < 2**32
    key = (np.uint64(0xFFFFFFFF) - ascending.astype(np.uint64)) << np.uint64(32)
    key |= np.arange(len(values), dtype=np.uint64)
    key.sort()
    return (key & np.uint64(0xFFFFFFFF)).astype(np.int64)
