"""Why a ranker loses to the fusion it reorders: measurements, not fixes.

For the validation users held out from ranker training, the same users are looked at twice:
with their validation target (what the order was chosen on) and with their test target (what
is reported). Between the two, the history gains one item, the sources and feature tables stay
as fitted on the training split. Reported per look:

- candidate recall of the merged list (groups a training set drops when the positive is missing),
  and where the positive sits in the merged list when it is there;
- full-ranking NDCG@10 of the merged order and of each ranker, and the same on the groups that
  hold their positive (the only ones a ranker trains on);
- the features whose distribution moves most between the looks (standardized mean difference
  over all candidate rows, and over the positives' rows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recsys.data.split import EvalSet, LeaveOneOut
from recsys.ranking.choose import Scorer, ndcg_at
from recsys.ranking.features import FeatureSource, FrameSpec, build_frame
from recsys.ranking.ranker import reorder
from recsys.ranking.train import subset
from recsys.retrieval.retriever import Retriever

TOP_SHIFTS = 8  # features listed per look


def _look(
    retriever: Retriever,
    eval_set: EvalSet,
    user_ids: Sequence[str],
    features: FeatureSource,
    spec: FrameSpec,
    scorers: Mapping[str, Scorer],
    batch: int,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Figures of one look, and the (rows, D) dense features of all rows and of the positives."""
    hits, slots, dense, pos_dense = [], [], [], []
    ndcg: dict[str, list[np.ndarray]] = {"merged": []}
    for start in range(0, len(eval_set), batch):
        rows = np.arange(start, min(start + batch, len(eval_set)))
        history = eval_set.history.select(rows)
        targets = eval_set.targets[rows]
        merged, _ = retriever.retrieve(history)
        users = [user_ids[int(i)] for i in rows]
        frame = build_frame(spec, merged, history, users, features, targets)
        match = merged.ids == targets[:, None]
        hits.append(match.any(axis=1))
        slots.append(match.argmax(axis=1)[match.any(axis=1)])
        ndcg["merged"].append(ndcg_at(merged.ids, targets))
        for name, scorer in scorers.items():
            ranked = reorder(merged, np.asarray(scorer(frame), np.float32))
            ndcg.setdefault(name, []).append(ndcg_at(ranked.ids, targets))
        dense.append(frame.dense[:: max(1, frame.n_rows // 20_000)])  # a bounded sample
        assert frame.label is not None
        pos_dense.append(frame.dense[frame.label > 0])
    hit = np.concatenate(hits)
    slot = np.concatenate(slots)
    per = {k: np.concatenate(v) for k, v in ndcg.items()}
    figures = {
        "users": len(hit),
        "candidate_recall": round(float(hit.mean()), 4),
        "positive_slot_median": float(np.median(slot)) if len(slot) else None,
        "positive_in_top10": round(float((slot < 10).mean()), 4) if len(slot) else None,
        "ndcg@10": {k: round(float(v.mean()), 5) for k, v in per.items()},
        "ndcg@10_groups_with_positive": {
            k: round(float(v[hit].mean()), 5) if hit.any() else None for k, v in per.items()
        },
    }
    return figures, np.concatenate(dense), np.concatenate(pos_dense)


def _shifts(a: np.ndarray, b: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """The features with the largest |mean(b) - mean(a)| / sd(a), NaN-aware."""
    with np.errstate(all="ignore"):
        mu_a, mu_b = np.nanmean(a, axis=0), np.nanmean(b, axis=0)
        sd = np.nanstd(a, axis=0)
        smd = np.where(sd > 0, (mu_b - mu_a) / sd, 0.0)
    smd = np.nan_to_num(smd)
    top = np.argsort(-np.abs(smd))[:TOP_SHIFTS]
    return {names[i]: round(float(smd[i]), 3) for i in top}


def valid_vs_test(
    retriever: Retriever,
    split: LeaveOneOut,
    held_out: EvalSet,
    features: FeatureSource,
    spec: FrameSpec,
    scorers: Mapping[str, Scorer],
    max_users: int = 3000,
    batch: int = 512,
) -> dict[str, Any]:
    """The held-out validation users' validation look against their test look."""
    users = held_out.users[:max_users]
    valid = subset(held_out, np.arange(len(users)))
    row_of = {int(u): i for i, u in enumerate(split.test.users)}
    test = subset(split.test, np.array([row_of[int(u)] for u in users], dtype=np.int64))
    ids = [str(u) for u in split.data.user_ids[users]]
    v, v_rows, v_pos = _look(retriever, valid, ids, features, spec, scorers, batch)
    t, t_rows, t_pos = _look(retriever, test, ids, features, spec, scorers, batch)
    names = spec.dense_names
    return {
        "valid": v,
        "test": t,
        "feature_shift_all_rows": _shifts(v_rows, t_rows, names),
        "feature_shift_positives": _shifts(v_pos, t_pos, names),
    }
