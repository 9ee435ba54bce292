"""Popularity: how many users touched each item in the training period (or its recent window).

The cold-start answer and the floor every learned model must clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np

from models.base import CandidateModel, TrainingData
from recsys.data.sequences import Sequences
from recsys.data.split import EvalSet


@dataclass(frozen=True)
class PopularConfig:
    # Only interactions within this many ts units of the latest one count; None = all.
    window: int | None = None


class PopularModel(CandidateModel):
    name = "popular"

    def __init__(self, config: PopularConfig | None = None) -> None:
        self.config = config or PopularConfig()
        self.counts_: np.ndarray | None = None  # (I,) float32
        self.order_: np.ndarray | None = None  # (I,) items by count, best first
        self.place_: np.ndarray | None = None  # (I,) each item's position in order_
        self.n_items_: int | None = None

    def fit(self, data: TrainingData, valid: EvalSet | None = None) -> Self:
        seqs = data.sequences
        keep = np.ones(len(seqs.items), dtype=bool)
        if self.config.window is not None and len(seqs.ts):
            keep = seqs.ts >= seqs.ts.max() - self.config.window
        counts = np.bincount(seqs.items[keep], minlength=data.n_items).astype(np.float32)
        self.counts_ = counts
        self.order_ = self.place_ = None  # derived from the counts: rebuilt on use
        self.n_items_ = data.n_items
        return self

    def score(self, histories: Sequences) -> np.ndarray:
        if self.counts_ is None:
            raise RuntimeError("popular is not fitted; call fit() first")
        return np.broadcast_to(self.counts_, (histories.n_users, len(self.counts_))).copy()

    def recommend(
        self, histories: Sequences, n: int, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The same answer as scoring every item, from one precomputed order: each row is the
        most popular items minus its history (ties: lower index first), padded with -1."""
        if n <= 0:
            raise ValueError(f"n must be positive, got {n}")
        if self.counts_ is None:
            raise RuntimeError("popular is not fitted; call fit() first")
        order = getattr(self, "order_", None)  # bundles pickled before place_ lack it
        place = getattr(self, "place_", None)
        if order is None or place is None:
            order = self.order_ = np.argsort(-self.counts_, kind="stable")  # (I,)
            place = self.place_ = np.argsort(order)  # (I,) item -> its position in order
        ids = np.full((histories.n_users, n), -1, dtype=np.int64)
        scores = np.full((histories.n_users, n), -np.inf, dtype=np.float32)
        for row in range(histories.n_users):
            seen = histories.items[histories.indptr[row] : histories.indptr[row + 1]]
            head = order[: n + len(seen)] if exclude_seen else order[:n]
            if exclude_seen and len(seen):
                # the seen items' places in the order, instead of a set test on the head
                at = place[seen]
                kept = np.ones(len(head), dtype=bool)
                kept[at[at < len(head)]] = False
                head = head[kept]
            head = head[:n]
            ids[row, : len(head)] = head
            scores[row, : len(head)] = self.counts_[head]
        return ids, scores
