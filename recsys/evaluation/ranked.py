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
from recsys.ranking.choose import blend_scores
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
    """Per-user metrics (arrays of B) under ``pipeline:<ranker>`` for each ranker, and under
    ``pipeline:default`` for the bundle's chosen order (the merged list where that was chosen)."""
    spec = next(iter(ranking.rankers.values())).spec
    frame = build_frame(spec, merged, history, user_ids, ranking.features)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, ranker in ranking.rankers.items():
        scores = ranker.score(frame)
        out[f"pipeline:{name}"] = list_metrics(reorder(merged, scores).ids, targets, ks, ns)
        if name == ranking.serve:
            served = reorder(merged, blend_scores(merged, scores, ranking.blend))
            out["pipeline:default"] = list_metrics(served.ids, targets, ks, ns)
    if ranking.serve is None:
        out["pipeline:default"] = list_metrics(merged.ids, targets, ks, ns)
    return out
