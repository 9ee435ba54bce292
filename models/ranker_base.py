"""The contract every ranker follows, whatever it is built on.

A ranker scores (user, candidate) rows of a :class:`~recsys.ranking.frame.RankingFrame`. It
is fitted on labelled groups, scores natively for training, evaluation and the parity check,
and exports to ONNX for serving: ``OnnxSession(ranker.export_onnx(path)).run(
ranker.onnx_feeds(frame))`` must give ``ranker.predict(frame)`` within ``onnx_tolerance``.
The pipeline (:class:`recsys.ranking.ranker.Ranker`) and the bundle only use these verbs, so a
new ranker is a class that has them plus an entry in :mod:`models.ranker_registry`. A tree
ranker may also have ``export_trees(path)`` (LightGBM model text): the bundle then compiles it
(:mod:`models.compiled_trees`) and serves it that way, as :mod:`models.ranker_runtime` picks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from recsys.ranking.frame import RankingFrame


@runtime_checkable
class RankerModel(Protocol):
    name: str
    # The largest |ONNX - native| score difference a bundle accepts at export: a tree model's
    # exported thresholds match exactly, a float32 network's sums drift in the last digits.
    onnx_tolerance: float

    def fit(self, train: RankingFrame, valid: RankingFrame | None = None) -> Self:
        """Fit on labelled groups; early stopping on ``valid`` (or held-out ``train`` groups)."""
        ...

    def predict(self, frame: RankingFrame) -> np.ndarray:
        """(N,) float32 native scores, higher ranks first within a group."""
        ...

    def onnx_feeds(self, frame: RankingFrame) -> dict[str, np.ndarray]:
        """The exported model's inputs for ``frame``, for ``OnnxSession.run``."""
        ...

    def export_onnx(self, path: str | Path) -> Path:
        """Write the fitted model as ONNX (one (N,) float32 output); returns the path."""
        ...

    def summary(self) -> dict[str, Any]:
        """Training facts for a benchmark report."""
        ...
