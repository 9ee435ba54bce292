"""The evaluation protocol: leave-one-out by time, full ranking, history excluded.

Scores are computed in user batches sized to the catalog so memory stays bounded
(``batch * n_items`` floats), which keeps Beauty's 22k users x 12k items to a few seconds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from models.base import CandidateModel, TrainingData, mask_history
from recsys.data.contract import Dataset
from recsys.data.sequences import encode
from recsys.data.split import LeaveOneOut, SplitName, leave_one_out
from recsys.evaluation.metrics import metric_keys, metrics_from_ranks, target_ranks

DEFAULT_KS = (10, 20)
_SCORE_BUDGET = 16_000_000  # floats per batch: ~64 MB of float32 scores


def evaluate_fitted(
    model: CandidateModel,
    split: LeaveOneOut,
    which: SplitName = "test",
    ks: Sequence[int] = DEFAULT_KS,
    progress: bool = False,
    ties: str = "expected",
    max_users: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean metrics of an already fitted model on the ``valid`` or ``test`` targets.

    ``max_users`` evaluates a seeded sample of that many users instead of all of them (full
    ranking costs users x items: at 1M x 100k it was most of a bundle's training time); the
    result then says ``sampled_from``.
    """
    eval_set = split.eval_set(which)
    n_users = len(eval_set)
    if n_users == 0:
        raise ValueError(
            f"no user has a {which} target: leave-one-out needs users with at least "
            f"{2 if which == 'test' else 3} distinct items"
        )
    if max_users is not None and max_users < 1:
        raise ValueError(f"max_users must be a positive count or None, got {max_users}")
    users = np.arange(n_users)
    if max_users is not None and n_users > max_users:
        users = np.sort(np.random.default_rng(seed).choice(n_users, max_users, replace=False))
    batch = max(1, min(4096, _SCORE_BUDGET // max(split.data.n_items, 1)))
    sums = dict.fromkeys(metric_keys(ks), 0.0)
    starts = range(0, len(users), batch)
    for start in tqdm(starts, desc=f"evaluate {model.name}", disable=not progress, unit="batch"):
        rows = users[start : start + batch]
        history = eval_set.history.select(rows)
        scores = model.score(history).astype(np.float32, copy=True)  # (b, I)
        mask_history(scores, history)
        greater, tied = target_ranks(scores, eval_set.targets[rows], ties)
        for key, values in metrics_from_ranks(greater, tied, ks).items():
            sums[key] += float(values.sum())
    out: dict[str, Any] = {key: value / len(users) for key, value in sums.items()}
    out["users"] = len(users)
    if len(users) < n_users:
        out["sampled_from"] = n_users
    return out


def evaluate_model(
    ds: Dataset,
    model: CandidateModel,
    which: SplitName = "test",
    ks: Sequence[int] = DEFAULT_KS,
    progress: bool = False,
    ties: str = "expected",
) -> dict[str, Any]:
    """Encode, split, fit on the training part, evaluate; one JSON-ready document."""
    started = time.perf_counter()
    split = leave_one_out(encode(ds))
    model.fit(TrainingData(split.train, ds.items))
    fitted = time.perf_counter()
    result = evaluate_fitted(model, split, which, ks, progress, ties)
    done = time.perf_counter()
    return {
        "dataset": ds.name,
        "model": model.name,
        "split": which,
        "protocol": "leave-one-out by time, full ranking, history excluded",
        "ties": ties,
        **result,
        "seconds": round(done - started, 3),
        "fit_seconds": round(fitted - started, 3),
        "config": model.config_dict(),
    }
