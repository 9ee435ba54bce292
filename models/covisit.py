"""Item-to-item co-visitation: items that follow each other in users' sequences.

Pairs within ``window`` positions (and, for real timestamps, within ``max_gap`` ts units) count
with weight ``1 / distance``; forward pairs (a then b) weigh more than backward ones because the
task is predicting what comes *next*. A user's score is the recency-weighted sum of the rows of
their last ``recent`` items. Popularity breaks the remaining ties, so users whose items have no
neighbours get the popular answer rather than an arbitrary one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import scipy.sparse as sp

from models.base import CandidateModel, TrainingData, top_n
from models.sparse_topn import (
    MAX_SPARSE_BATCH,
    max_sparse_hits,
    sparse_top_n,
    weighted_rows,
    worth_sparse,
)
from recsys.data.sequences import Sequences
from recsys.data.split import EvalSet
from recsys.native import rows as native_rows


@dataclass(frozen=True)
class CovisitConfig:
    window: int = 5  # positions either side that count as co-visited
    max_gap: int | None = None  # session window, ts units: pairs further apart do not count
    # Pairs seen this many ts units before the latest training event count half as much, so
    # the matrix follows drifting tastes and seasons. None = no decay.
    time_half_life: float | None = None
    backward_weight: float = 0.5  # weight of "b came before a" relative to "a then b"
    recent: int = 5  # how many of the user's latest items are looked up
    recency_decay: float = 0.6  # weight of the k-th latest item is decay**k
    pop_normalize: float = 0.0  # divide column j by popularity_j**this (0 = off)


class CovisitModel(CandidateModel):
    name = "covisit"

    def __init__(self, config: CovisitConfig | None = None) -> None:
        self.config = config or CovisitConfig()
        self.matrix_: sp.csr_matrix | None = None  # (I, I): row a -> items seen near a
        self.popularity_: np.ndarray | None = None  # (I,) float32 in [0, 1)
        self.pop_order_: np.ndarray | None = None  # (I,) items by popularity, best first
        self.n_items_: int | None = None

    def fit(self, data: TrainingData, valid: EvalSet | None = None) -> Self:
        cfg = self.config
        seqs = data.sequences
        n = data.n_items
        users = seqs.user_index()
        rows, cols, vals = [], [], []
        for d in range(1, cfg.window + 1):
            same = users[:-d] == users[d:]
            if cfg.max_gap is not None:
                same &= (seqs.ts[d:] - seqs.ts[:-d]) <= cfg.max_gap
            a, b = seqs.items[:-d][same], seqs.items[d:][same]
            w = np.full(len(a), 1.0 / d, dtype=np.float32)
            if cfg.time_half_life is not None and len(seqs.ts):
                age = (seqs.ts.max() - seqs.ts[d:][same]).astype(np.float64)
                w *= np.power(0.5, age / cfg.time_half_life).astype(np.float32)
            rows += [a, b]
            cols += [b, a]
            vals += [w, w * cfg.backward_weight]
        if rows:
            r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        else:
            r = c = np.zeros(0, np.int32)
            v = np.zeros(0, np.float32)
        matrix = sp.csr_matrix((v, (r, c)), shape=(n, n), dtype=np.float32)
        matrix.sum_duplicates()
        pop = np.bincount(seqs.items, minlength=n).astype(np.float32)
        if cfg.pop_normalize > 0:
            matrix = matrix @ sp.diags(1.0 / np.power(np.maximum(pop, 1.0), cfg.pop_normalize))
        self.matrix_ = matrix.tocsr()
        # Scaled below the smallest possible co-visitation weight so it only breaks ties.
        self.popularity_ = (pop / (pop.max() + 1.0) * 1e-6).astype(np.float32)
        self.pop_order_ = np.argsort(-self.popularity_, kind="stable")
        self.n_items_ = n
        return self

    def _links(self, histories: Sequences) -> sp.csr_matrix:
        """(B, I) sparse co-visitation scores: recency-weighted rows of the latest items."""
        if self.matrix_ is None or self.popularity_ is None:
            raise RuntimeError("covisit is not fitted; call fit() first")
        recent = histories.last(self.config.recent)
        lengths = recent.lengths
        # position from the end: 0 for the latest item
        from_end = np.repeat(recent.indptr[1:], lengths) - 1 - np.arange(len(recent.items))
        weights = np.power(self.config.recency_decay, from_end).astype(np.float32)
        query = sp.csr_matrix(
            (weights, recent.items, recent.indptr), shape=(recent.n_users, self.matrix_.shape[0])
        )
        return (query @ self.matrix_).tocsr()

    def score(self, histories: Sequences) -> np.ndarray:
        scores = self._links(histories).toarray()  # (B, I); raises when unfitted
        assert self.popularity_ is not None
        scores += self.popularity_
        return scores

    def _recent(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The latest items looked up (R,) int64 and their recency weights (R,) float64."""
        recent = np.asarray(history[-self.config.recent :], dtype=np.int64)
        return recent, np.power(self.config.recency_decay, np.arange(len(recent))[::-1])

    def _row_links(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One history's links as (items, weights), an item once per recent item linking it:
        the matrix rows gathered directly, no sparse objects (whose construction and checks
        cost more than the arithmetic at one request)."""
        assert self.matrix_ is not None
        return weighted_rows(self.matrix_, *self._recent(history))

    def recommend(
        self, histories: Sequences, n: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`CandidateModel.recommend` (same list up to ties and float rounding), per
        history from its gathered links: the few linked items plus the popularity order where
        they are a small share of the catalog, else one dense row. Large batches take the
        vectorised dense path."""
        if histories.n_users > MAX_SPARSE_BATCH:
            return super().recommend(histories, n, exclude_seen)
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        if self.matrix_ is None or self.popularity_ is None:
            raise RuntimeError("covisit is not fitted; call fit() first")
        pop = self.popularity_
        order = getattr(self, "pop_order_", None)
        if order is None:  # bundles pickled before the sparse path lack it
            order = self.pop_order_ = np.argsort(-pop, kind="stable")
        ids = np.empty((histories.n_users, n), dtype=np.int64)
        scores = np.empty((histories.n_users, n), dtype=np.float32)
        max_hits = max_sparse_hits(len(pop))  # where the kernel leaves a row to the sparse path
        for row in range(histories.n_users):
            history = histories.user(row)
            recent, weights = self._recent(history)
            dense = native_rows.covisit_row(self.matrix_, recent, weights.astype(np.float32), pop,
                                            history if exclude_seen else None,
                                            max_hits)  # fmt: skip
            if dense is not None:  # the dense branch below, in one C call
                got = top_n(dense[None, :], n)
                ids[row], scores[row] = got[0][0], got[1][0]
                continue
            cols, vals = self._row_links(history)
            if worth_sparse(len(cols), 1, len(pop)):
                one = Sequences.one_history(history, len(pop))
                items, inverse = np.unique(cols, return_inverse=True)
                summed = np.bincount(inverse, weights=vals).astype(np.float32) + pop[items]
                hits = sp.csr_matrix((summed, items, np.array([0, len(items)])),
                                     shape=(1, len(pop)))  # fmt: skip
                got = sparse_top_n(hits, order, pop, one, n, exclude_seen)
            else:
                dense = np.bincount(cols, weights=vals, minlength=len(pop)).astype(np.float32)
                dense += pop
                if exclude_seen:
                    dense[history] = -np.inf
                got = top_n(dense[None, :], n)
            ids[row], scores[row] = got[0][0], got[1][0]
        return ids, scores

    def link_weights(self, histories: Sequences, ids: np.ndarray, k: int) -> np.ndarray:
        """(B, N, k) the co-visitation weight from each history's j-th latest item (j = 0 the
        latest) to each of ``ids`` (B, N; -1 = empty slot), 0 where none links them: the
        per-item parts :meth:`score` sums with recency weights, for a ranker to weigh itself."""
        if self.matrix_ is None:
            raise RuntimeError("covisit is not fitted; call fit() first")
        ids = np.asarray(ids, dtype=np.int64)
        out = np.zeros((*ids.shape, k), dtype=np.float32)
        m = self.matrix_
        # each linked row scattered into a dense scratch and read at the candidates: 0.08 ms a
        # request on a 20k-item catalog, against 0.14 for a sorted search of the row
        scratch = np.zeros(m.shape[1], dtype=np.float32)
        safe = np.where(ids >= 0, ids, 0)
        for b in range(histories.n_users):
            for j, item in enumerate(histories.user(b)[::-1][:k]):  # latest first
                lo, hi = m.indptr[item], m.indptr[item + 1]
                if lo == hi:
                    continue
                cols = m.indices[lo:hi]
                scratch[cols] = m.data[lo:hi]
                out[b, :, j] = scratch[safe[b]]
                scratch[cols] = 0.0
        out[ids < 0] = 0.0
        return out

    def strongest_links(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(n,) for each of ``items``, the item of one user's ``history`` (oldest first) that
        adds most to its score, weighted as in :meth:`score`; -1 where none co-visits it."""
        if self.matrix_ is None:
            raise RuntimeError("covisit is not fitted; call fit() first")
        recent = np.asarray(history[-self.config.recent :], dtype=np.int64)
        if not len(recent) or not len(items):
            return np.full(len(items), -1, dtype=np.int64)
        weights = np.power(self.config.recency_decay, np.arange(len(recent))[::-1])
        block = self.matrix_[recent][:, np.asarray(items, dtype=np.int64)].toarray()  # (r, n)
        block = block * weights[:, None]
        best = block.argmax(axis=0)
        return np.where(block.max(axis=0) > 0, recent[best], -1)
