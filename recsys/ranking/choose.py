"""Which order a bundle serves by default: the merged fusion, a ranker, or a blend of the two.

A ranker is trained on one set of validation users; the order to serve is chosen on *other*
validation users (held out from ranker training, never the test targets) by full-ranking
NDCG@10: the target counts wherever it sits in the served list, a target the candidates missed
is a miss for every order. Candidate orders:

- ``merged``: the retrieval fusion as is;
- ``<ranker>``: the ranker's order of the merged candidates;
- ``blend:<ranker>``: reciprocal-rank fusion of the ranker's order and the merged order,
  ``(1 - w) / (k + rank_ranker) + w / (k + rank_merged)``, ``w`` from a grid. Ranks, not raw
  scores, are blended so the weight means the same for a LambdaRank margin and a DLRM logit.

A ranker that wins on the held-out users by less than ``z`` standard errors of its paired
per-user difference is not trusted over the fusion: choosing the maximum of many noisy figures
is optimistic, and the point is never to serve something worse than the fusion on unseen data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.data.split import EvalSet
from recsys.ranking.features import FeatureSource, FrameSpec, build_frame
from recsys.ranking.frame import RankingFrame
from recsys.ranking.ranker import blend_scores, reorder
from recsys.retrieval.merge import CandidateBatch
from recsys.retrieval.retriever import Retriever

MERGED = "merged"
DEFAULT_BLENDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

Scorer = Callable[[RankingFrame], np.ndarray]


@dataclass(frozen=True)
class OrderChoice:
    """The served order: ``ranker`` None = the merged fusion; ``blend`` = weight of the merged
    order in the blend (0 = the ranker's order alone)."""

    label: str  # "merged", "<ranker>" or "blend:<ranker>"
    ranker: str | None
    blend: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.blend <= 1.0:
            raise ValueError(f"blend weight must be in [0, 1], got {self.blend}")
        if self.ranker is None and self.label != MERGED:
            raise ValueError(f"order {self.label!r} names no ranker; only {MERGED!r} may")


def ndcg_at(ids: np.ndarray, targets: np.ndarray, k: int = 10) -> np.ndarray:
    """(B,) NDCG@k of one target per list (0 where it is not in the top k)."""
    match = ids[:, :k] == np.asarray(targets)[:, None]
    pos = match.argmax(axis=1)
    return np.where(match.any(axis=1), 1.0 / np.log2(pos + 2.0), 0.0)


def order_label(ranker: str | None, blend: float) -> str:
    if ranker is None:
        return MERGED
    return ranker if blend <= 0.0 else f"blend:{ranker}"


def _batches(
    retriever: Retriever,
    eval_set: EvalSet,
    user_ids: Sequence[str],
    features: FeatureSource,
    spec: FrameSpec,
    batch: int,
) -> Iterator[tuple[CandidateBatch, RankingFrame, np.ndarray]]:
    for start in range(0, len(eval_set), batch):
        rows = np.arange(start, min(start + batch, len(eval_set)))
        history = eval_set.history.select(rows)
        merged, _ = retriever.retrieve(history)
        users = [user_ids[int(i)] for i in rows]
        yield merged, build_frame(spec, merged, history, users, features), eval_set.targets[rows]


def validation_ndcg(
    retriever: Retriever,
    eval_set: EvalSet,
    user_ids: Sequence[str],
    features: FeatureSource,
    spec: FrameSpec,
    scorers: Mapping[str, Scorer],
    blends: Sequence[float] = DEFAULT_BLENDS,
    k: int = 10,
    batch: int = 512,
) -> dict[tuple[str | None, float], np.ndarray]:
    """Per-user full-ranking NDCG@k of every candidate order, keyed (ranker or None, blend)."""
    out: dict[tuple[str | None, float], list[np.ndarray]] = {(None, 0.0): []}
    for merged, frame, targets in _batches(retriever, eval_set, user_ids, features, spec, batch):
        out[(None, 0.0)].append(ndcg_at(merged.ids, targets, k))
        for name, scorer in scorers.items():
            scores = np.asarray(scorer(frame), np.float32)
            for w in (0.0, *blends):
                ids = reorder(merged, blend_scores(merged, scores, w)).ids
                out.setdefault((name, w), []).append(ndcg_at(ids, targets, k))
    return {key: np.concatenate(parts) for key, parts in out.items()}


def choose_order(
    per_user: Mapping[tuple[str | None, float], np.ndarray], z: float = 1.0
) -> tuple[OrderChoice, dict[str, Any]]:
    """The best order on validation that beats the merged fusion by ``z`` standard errors of the
    paired per-user difference (else the merged fusion), and the figures behind the choice."""
    if (None, 0.0) not in per_user:
        raise ValueError(f"per-user figures lack the merged order; got keys {sorted(per_user)}")
    base = per_user[(None, 0.0)]
    n = len(base)
    figures: dict[str, Any] = {MERGED: round(float(base.mean()), 5) if n else 0.0}
    best: tuple[float, str | None, float] = (figures[MERGED], None, 0.0)
    grids: dict[str, dict[str, float]] = {}
    for (name, w), values in per_user.items():
        if name is None:
            continue
        mean = float(values.mean()) if n else 0.0
        diff = values - base
        se = float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
        grids.setdefault(name, {})[f"{w:.2f}"] = round(mean, 5)
        if w == 0.0:
            figures[name] = round(mean, 5)
        if mean > best[0] and float(diff.mean()) > z * se:
            best = (mean, name, w)
    for name, grid in grids.items():
        blended = {float(w): v for w, v in grid.items() if float(w) > 0.0}
        if blended:
            w_best = max(blended, key=lambda w: (blended[w], -w))
            figures[f"blend:{name}"] = {"weight": w_best, "ndcg@10": blended[w_best]}
    choice = OrderChoice(order_label(best[1], best[2]), best[1], best[2])
    report = {
        "chosen": choice.label,
        "ranker": choice.ranker,
        "blend": choice.blend,
        "validation_users": n,
        "validation_ndcg@10": figures,
        "blend_grid": grids,
        "z": z,
    }
    return choice, report
