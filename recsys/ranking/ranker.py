"""A trained ranker as the pipeline uses it: score candidate rows, reorder the merged list.

Serving scores through ONNX Runtime (execution providers picked from a preference list:
TensorRT, CUDA, CPU, the first available wins); the native model stays for evaluation and parity
checks. The same :meth:`Ranker.rank` orders one request (the ranking stage) and a thousand
(evaluation), so what is evaluated is what is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.ranker_base import RankerModel
from recsys.data.sequences import Sequences
from recsys.ranking.features import FeatureSource, FrameSpec, build_frame
from recsys.ranking.frame import RankingFrame
from recsys.retrieval.merge import CandidateBatch
from recsys.retrieval.retriever import history_of


@dataclass(frozen=True)
class Ranked:
    """Reordered candidates for B requests: ids (B, N) with -1 padding, scores (B, N)."""

    ids: np.ndarray
    scores: np.ndarray
    order: np.ndarray  # (B, N) slot of the merged list each ranked position came from


@dataclass
class Ranker:
    name: str
    spec: FrameSpec
    model: RankerModel
    session: Any = None  # models.onnx_runtime.OnnxSession; None scores natively

    def score(self, frame: RankingFrame, native: bool = False) -> np.ndarray:
        """(N,) float32 scores, through ONNX Runtime unless ``native`` or no session."""
        if native or self.session is None:
            return np.asarray(self.model.predict(frame), dtype=np.float32)
        return np.asarray(self.session.run(self.model.onnx_feeds(frame)), dtype=np.float32)

    def rank(
        self,
        batch: CandidateBatch,
        histories: Sequences,
        user_ids: Sequence[str],
        features: FeatureSource,
        native: bool = False,
    ) -> Ranked:
        frame = build_frame(self.spec, batch, histories, user_ids, features)
        scores = self.score(frame, native)
        return reorder(batch, scores)


def reorder(batch: CandidateBatch, row_scores: np.ndarray) -> Ranked:
    """Sort each request's filled slots by score (stable: ties keep the merged order)."""
    filled = batch.ids >= 0  # (B, N)
    grid = np.full(batch.ids.shape, -np.inf, dtype=np.float32)
    grid[filled] = row_scores  # rows were built row-major over the filled slots
    order = np.argsort(-grid, axis=1, kind="stable")  # (B, N)
    ids = np.take_along_axis(batch.ids, order, axis=1)
    scores = np.take_along_axis(grid, order, axis=1)
    return Ranked(ids=ids, scores=scores, order=order)


@dataclass
class RankingStage:
    """Reads the merged candidates and the history, writes them reordered by the ranker."""

    ranker: Ranker
    features: FeatureSource
    n_items: int
    name: str = "ranking"
    reads: tuple[str, ...] = ("user_id", "history", "candidates")
    writes: tuple[str, ...] = ("ranked",)

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        history = history_of(state["history"], self.n_items)
        ranked = self.ranker.rank(
            state["candidates"], history, [str(state["user_id"])], self.features
        )
        return {"ranked": ranked}
