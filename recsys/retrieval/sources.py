"""Candidate sources: a fitted model, and for vector models the index that serves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from models.base import CandidateModel, VectorModel
from recsys.data.sequences import Sequences
from recsys.retrieval.merge import SourceLists

if TYPE_CHECKING:
    from models.index import IndexConfig


@dataclass
class CandidateSource:
    """One retrieval source. ``needs_history`` sources say nothing for an empty history."""

    name: str
    model: CandidateModel
    index: Any = None  # models.index.VectorIndex for vector models, else None
    needs_history: bool = True
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def is_vector(self) -> bool:
        return self.index is not None and _vector_type(type(self.model))

    def top(self, histories: Sequences, n: int) -> SourceLists:
        """(B, n) best items per history, history excluded, -1 padded."""
        batch = histories.n_users
        rows = np.flatnonzero(histories.lengths) if self.needs_history else np.arange(batch)
        if batch and len(rows) == batch:  # every row answered: the lists as they come
            got_ids, got_scores = self._top(histories, n)
            if got_ids.shape != (batch, n) or got_scores.shape != (batch, n):
                raise ValueError(
                    f"source {self.name!r} answered ids {got_ids.shape} and scores "
                    f"{got_scores.shape} for {batch} histories, n={n}: expected ({batch}, {n})"
                )
            return SourceLists(got_ids.astype(np.int64, copy=False),
                               got_scores.astype(np.float32, copy=False))  # fmt: skip
        ids = np.full((batch, n), -1, dtype=np.int64)
        scores = np.full((batch, n), -np.inf, dtype=np.float32)
        if len(rows):
            ids[rows], scores[rows] = self._top(histories.select(rows), n)
        return SourceLists(ids, scores)

    def _top(self, histories: Sequences, n: int) -> tuple[np.ndarray, np.ndarray]:
        if self.is_vector:
            queries = self.model.query_vectors(histories)  # type: ignore[attr-defined]  # (B, D)
            result: tuple[np.ndarray, np.ndarray] = self.index.search_excluding(
                queries, n, exclude=histories
            )
            return result
        return self.model.recommend(histories, n)


@cache
def _vector_type(cls: type) -> bool:
    # a runtime Protocol isinstance costs ~5 us: once per model class, not per request
    return issubclass(cls, VectorModel)


TUNING_USERS = 1000  # histories whose query vectors choose an approximate index's effort


def index_for(
    model: CandidateModel,
    histories: Sequences | None = None,
    config: IndexConfig | None = None,
    seed: int = 0,
) -> Any:
    """The FAISS index that serves a fitted vector model; None for the others.

    Where the index is approximate (IVF, above ``config.exact_max_items`` items), the query
    vectors of up to :data:`TUNING_USERS` of the ``histories`` (the training users, seeded
    sample) choose how many lists a search visits (``models.index_tuning``)."""
    if not isinstance(model, VectorModel):
        return None
    from models.index import IndexConfig, VectorIndex

    config = config or IndexConfig()
    vectors = np.ascontiguousarray(model.item_vectors(), dtype=np.float32)
    queries = None
    if config.kind_for(len(vectors)) == "ivf" and histories is not None:
        users = np.flatnonzero(histories.lengths > 0)
        if len(users) > TUNING_USERS:
            users = np.sort(np.random.default_rng(seed).choice(users, TUNING_USERS, replace=False))
        if len(users):
            queries = model.query_vectors(histories.select(users))
    return VectorIndex(config).build(vectors, queries)
