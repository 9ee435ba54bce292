"""Candidate sources: a fitted model, and for vector models the index that serves it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.base import CandidateModel, VectorModel
from recsys.data.sequences import Sequences
from recsys.retrieval.merge import SourceLists


@dataclass
class CandidateSource:
    """One retrieval source. ``needs_history`` sources say nothing for an empty history."""

    name: str
    model: CandidateModel
    index: Any = None  # models.index.VectorIndex for vector models, else None
    needs_history: bool = True
    stats: dict[str, float] = field(default_factory=dict)

    _vector: tuple[Any, Any, bool] | None = field(default=None, init=False, repr=False)

    @property
    def is_vector(self) -> bool:
        # a runtime Protocol check costs ~5 us: once per (model, index) pair, not per request
        seen = self._vector
        if seen is None or seen[0] is not self.model or seen[1] is not self.index:
            vector = self.index is not None and isinstance(self.model, VectorModel)
            seen = self._vector = (self.model, self.index, vector)
        return seen[2]

    def top(self, histories: Sequences, n: int) -> SourceLists:
        """(B, n) best items per history, history excluded, -1 padded."""
        batch = histories.n_users
        ids = np.full((batch, n), -1, dtype=np.int64)
        scores = np.full((batch, n), -np.inf, dtype=np.float32)
        rows = np.arange(batch)
        if self.needs_history:
            rows = np.flatnonzero(histories.lengths > 0)
        if len(rows) == 0:
            return SourceLists(ids, scores)
        part = histories if len(rows) == batch else histories.select(rows)
        if self.is_vector:
            queries = self.model.query_vectors(part)  # type: ignore[attr-defined]  # (b, D)
            got_ids, got_scores = self.index.search_excluding(queries, n, exclude=part)
        else:
            got_ids, got_scores = self.model.recommend(part, n)
        ids[rows], scores[rows] = got_ids, got_scores
        return SourceLists(ids, scores)


TUNING_USERS = 1000  # histories whose query vectors choose an approximate index's effort


def index_for(
    model: CandidateModel,
    histories: Sequences | None = None,
    config: Any = None,
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
    approximate = config.kind == "ivf" or (
        config.kind == "auto"
        and config.auto_kind == "ivf"
        and len(vectors) > config.exact_max_items
    )
    if approximate and histories is not None:
        users = np.flatnonzero(histories.lengths > 0)
        if len(users) > TUNING_USERS:
            users = np.sort(np.random.default_rng(seed).choice(users, TUNING_USERS, replace=False))
        if len(users):
            queries = model.query_vectors(histories.select(users))
    return VectorIndex(config).build(vectors, queries)
