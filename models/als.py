"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) through `implicit`'s ALS.

Each user-item pair's confidence grows with the strongest event seen for it (a purchase says more
than a view) and with its recency in the user's sequence. Users are never looked up by id: their
factors are folded in from the history given at request time (one weighted least-squares solve
each), so a user's newest items count immediately and an unseen user with a short history gets
a real answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

import numpy as np
import scipy.sparse as sp

from models.base import CandidateModel, TrainingData
from recsys.data.contract import EVENTS
from recsys.data.sequences import Sequences


@dataclass(frozen=True)
class ALSConfig:
    factors: int = 128
    regularization: float = 0.1
    alpha: float = 10.0  # confidence = 1 + alpha * event weight * recency weight
    iterations: int = 15
    # weight of the strongest event per user-item, in EVENTS order: view, click, cart,
    # purchase, rating
    event_weights: tuple[float, ...] = (1.0, 1.5, 2.5, 4.0, 1.0)
    # Recent items matter more for "what next": an item k steps from the end of the history
    # weighs floor + (1 - floor) * 0.5 ** (k / half_life). None turns it off.
    recency_half_life: float | None = 3.0
    recency_floor: float = 0.2
    seed: int = 0
    threads: int = 0  # 0 = all cores


class ALSModel(CandidateModel):
    name = "als"

    def __init__(self, config: ALSConfig | None = None) -> None:
        self.config = config or ALSConfig()
        if len(self.config.event_weights) != len(EVENTS):
            raise ValueError(
                f"event_weights needs one weight per event {list(EVENTS)}, "
                f"got {len(self.config.event_weights)}"
            )
        self._als: object | None = None
        self.item_factors_: np.ndarray | None = None  # (I, F)
        self.n_items_: int | None = None

    def _user_items(self, seqs: Sequences) -> sp.csr_matrix:
        cfg = self.config
        weights = np.asarray(cfg.event_weights, dtype=np.float32)[seqs.strength]
        if cfg.recency_half_life is not None:
            from_end = np.repeat(seqs.indptr[1:], seqs.lengths) - 1 - np.arange(len(seqs.items))
            decay = np.power(0.5, from_end / cfg.recency_half_life)
            weights = weights * (cfg.recency_floor + (1.0 - cfg.recency_floor) * decay)
        return sp.csr_matrix(
            (weights.astype(np.float32), seqs.items, seqs.indptr),
            shape=(seqs.n_users, seqs.n_items),
        )

    def fit(self, data: TrainingData) -> Self:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        cfg = self.config
        # implicit warns (and slows down) when BLAS runs its own threads inside ALS's.
        with threadpool_limits(1, "blas"):
            als = AlternatingLeastSquares(
                factors=cfg.factors,
                regularization=cfg.regularization,
                alpha=cfg.alpha,
                iterations=cfg.iterations,
                random_state=cfg.seed,
                num_threads=cfg.threads,
            )
            als.fit(self._user_items(data.sequences), show_progress=False)
        self._als = als
        self.item_factors_ = np.asarray(als.item_factors, dtype=np.float32)
        self.n_items_ = data.n_items
        return self

    def query_vectors(self, histories: Sequences) -> np.ndarray:
        """(B, F) user factors folded in from each history."""
        if self._als is None:
            raise RuntimeError("als is not fitted; call fit() first")
        user_items = self._user_items(histories)
        users = np.arange(histories.n_users)
        factors = self._als.recalculate_user(users, user_items)  # type: ignore[attr-defined]
        return np.asarray(factors, dtype=np.float32).reshape(histories.n_users, -1)

    def item_vectors(self) -> np.ndarray:
        if self.item_factors_ is None:
            raise RuntimeError("als is not fitted; call fit() first")
        return self.item_factors_

    def score(self, histories: Sequences) -> np.ndarray:
        return self.query_vectors(histories) @ self.item_vectors().T  # (B, I)
