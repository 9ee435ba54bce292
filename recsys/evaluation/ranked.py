"""Full-pipeline metrics for one batch: each ranker reordering the merged candidates.

The batch's rows are built once and scored by every ranker, through ONNX Runtime as served. A
target the candidates missed is a miss, so these figures compare directly with each source's
full-ranking metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys.data.sequences import Sequences
from recsys.evaluation.metrics import list_metrics
from recsys.ranking.bundle import Ranking
from recsys.ranking.features import build_frame
from recsys.ranking.ranker import reorder
from recsys.retrieval.merge import CandidateBatch


def ranked_metrics(
    ranking: Ranking,
    merged: CandidateBatch,
    history: Sequences,
    user_ids: Sequence[str],
    targets: np.ndarray,
    ks: Sequence[int],
    ns: Sequence[int],
) -> dict[str, dict[str, np.ndarray]]:
    """Per-user metrics (arrays of B) under ``pipeline:<ranker>`` for each ranker."""
    spec = next(iter(ranking.rankers.values())).spec
    frame = build_frame(spec, merged, history, user_ids, ranking.features)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, ranker in ranking.rankers.items():
        ranked = reorder(merged, ranker.score(frame))
        out[f"pipeline:{name}"] = list_metrics(ranked.ids, targets, ks, ns)
    return out
