"""Exact full-ranking metrics with ties handled as an expectation, not by luck.

A target whose score ties with ``t`` other items sits, under a uniformly random tie-break, at
each rank ``g+1 .. g+t+1`` with probability ``1/(t+1)`` (``g`` = items scored strictly higher).
Every metric here is its exact expectation over that tie-break. This keeps degenerate scorers
honest: a model that gives every item the same score gets chance-level metrics, not perfect ones
(as an optimistic "count only strictly greater" rule would give) and not zero (as a pessimistic
one would), and the result never depends on item order in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METRICS = ("recall", "ndcg", "mrr")


def metric_keys(ks: Sequence[int]) -> list[str]:
    return [f"{m}@{k}" for k in ks for m in METRICS]


def _prefix_tables(max_rank: int) -> tuple[np.ndarray, np.ndarray]:
    ranks = np.arange(1, max_rank + 1, dtype=np.float64)
    dcg = np.r_[0.0, np.cumsum(1.0 / np.log2(ranks + 1.0))]  # dcg[n] = sum_{r<=n} 1/log2(r+1)
    rr = np.r_[0.0, np.cumsum(1.0 / ranks)]  # rr[n] = sum_{r<=n} 1/r
    return dcg, rr


def metrics_from_ranks(
    greater: np.ndarray, ties: np.ndarray, ks: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-user expected Recall@K (= HR@K), NDCG@K and MRR@K.

    greater: (B,) items scored strictly above the target.
    ties: (B,) *other* items scored exactly like the target.
    """
    greater = np.asarray(greater, dtype=np.int64)
    ties = np.asarray(ties, dtype=np.int64)
    if greater.shape != ties.shape:
        raise ValueError(f"greater {greater.shape} and ties {ties.shape} differ in shape")
    if (greater < 0).any() or (ties < 0).any():
        raise ValueError("greater and ties must be non-negative counts")
    dcg, rr = _prefix_tables(max(ks))
    span = ties + 1.0
    out: dict[str, np.ndarray] = {}
    for k in ks:
        lo = np.minimum(greater, k)  # ranks 1..lo are taken by better items
        hi = np.minimum(greater + ties + 1, k)  # the target's rank range clipped at k
        out[f"recall@{k}"] = (hi - lo) / span
        out[f"ndcg@{k}"] = (dcg[hi] - dcg[lo]) / span
        out[f"mrr@{k}"] = (rr[hi] - rr[lo]) / span
    return out


TIES = ("expected", "index")


def target_ranks(
    scores: np.ndarray, targets: np.ndarray, ties: str = "expected"
) -> tuple[np.ndarray, np.ndarray]:
    """(greater, ties) of each row's target. Excluded items must already be ``-inf``.

    scores: (B, I) float; targets: (B,) item index.
    ties: "expected" keeps tied items as ties (scored in expectation by
    :func:`metrics_from_ranks`); "index" breaks them by item index, lower first, as a stable
    sort or ``torch.topk`` does, which is how most published full-ranking numbers were made.
    """
    if ties not in TIES:
        raise ValueError(f"unknown tie rule {ties!r}; valid rules are {list(TIES)}")
    if scores.ndim != 2 or scores.shape[0] != len(targets):
        raise ValueError(f"scores {scores.shape} do not match {len(targets)} targets")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN; a model must score every item")
    target_scores = scores[np.arange(len(targets)), targets][:, None]  # (B, 1)
    if np.isneginf(target_scores).any():
        raise ValueError("a target item was excluded from ranking (scored -inf)")
    greater = (scores > target_scores).sum(axis=1)
    tied = scores == target_scores
    if ties == "index":
        before = np.arange(scores.shape[1])[None, :] < np.asarray(targets)[:, None]
        return greater + (tied & before).sum(axis=1), np.zeros_like(greater)
    return greater, tied.sum(axis=1) - 1


def candidate_recall(
    candidates: np.ndarray, targets: np.ndarray, ns: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-user hit of the target in the first ``n`` candidates (padding is ``-1``).

    candidates: (B, N) item index, best first; targets: (B,).
    """
    big = np.iinfo(np.int64).max
    match = candidates == np.asarray(targets)[:, None]
    first = np.where(match, np.arange(candidates.shape[1]), big).min(axis=1, initial=big)
    return {f"candidate_recall@{n}": (first < n).astype(np.float64) for n in ns}


def list_metrics(
    ids: np.ndarray, targets: np.ndarray, ks: Sequence[int], ns: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-user metrics of ranked lists (B, N): position of the target, or a miss."""
    match = ids == targets[:, None]
    found = match.any(axis=1)
    position = np.where(found, match.argmax(axis=1), ids.shape[1] + max(ks))  # 0-based
    out = metrics_from_ranks(position, np.zeros_like(position), ks)
    out.update(candidate_recall(ids, targets, ns))
    return out
