"""The merge's fill and quota share, chosen per dataset on validation users.

The hand-set quotas (``DEFAULT_QUOTAS``) guarantee each source's head a fixed share of the
merged list, and the fused (RRF) order fills what overlaps leave. Which mix reaches the most
targets depends on the data: on Beauty validation a fill learned from the sources' ranks and a
smaller guaranteed share found more targets; on Industrial the hand-set mix did. So training
chooses, on users it has not learned the fill from, among

- the configuration as given (the hand-set quotas, RRF fill), and
- a log-rank fill (``merge``'s ``fill``) whose per-source weights are a logistic regression of
  "is the target" on ``log(rank)`` in each source's list, with the quotas guaranteeing each
  share in ``quota_shares`` of the list,

by candidate recall at ``total`` (the share of targets that reach the ranker). A change must
beat the configuration as given by ``z`` standard errors of the paired per-user difference, so
noise on a small dataset keeps the hand-set mix.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from recsys.data.split import EvalSet
from recsys.retrieval.merge import SourceLists, log_rank, merge
from recsys.retrieval.retriever import RetrievalConfig, Retriever


@dataclass(frozen=True)
class FillTuneConfig:
    # validation users drawn; half learn the fill weights, half choose. On Beauty 4,000 left one
    # standard error of the recall gain (0.0045) as large as the gain (0.005).
    max_users: int = 8000
    quota_shares: tuple[float, ...] = (0.0, 0.5, 1.0)
    # Negatives kept when learning the weights: the ranks' effect, not the base rate, is what
    # orders the fill, and a sample keeps the fit to seconds on a 5M-row union.
    negative_share: float = 0.05
    z: float = 1.0
    seed: int = 0
    batch: int = 256

    def __post_init__(self) -> None:
        bad = [s for s in self.quota_shares if not 0.0 <= s <= 1.0]
        if bad or not self.quota_shares:
            raise ValueError(f"quota_shares must be non-empty and in [0, 1], got {bad or '()'}")
        if self.max_users < 4:
            raise ValueError(
                f"max_users must be >= 4 (2 to learn, 2 to choose), got {self.max_users}"
            )


def _lists(
    retriever: Retriever, eval_set: EvalSet, rows: np.ndarray, batch: int
) -> dict[str, SourceLists]:
    """Each source's own list (``config.depth`` deep) for ``rows`` of ``eval_set``."""
    parts: dict[str, list[SourceLists]] = {}
    for start in range(0, len(rows), batch):
        got, _ = retriever.source_lists(eval_set.history.select(rows[start : start + batch]))
        for name, lst in got.items():
            parts.setdefault(name, []).append(lst)
    depth = retriever.config.depth
    return {
        name: SourceLists(np.concatenate([p.ids[:, :depth] for p in ps]),
                          np.concatenate([p.scores[:, :depth] for p in ps]))
        for name, ps in parts.items()
    }  # fmt: skip


def _rows(lists: dict[str, SourceLists], rows: np.ndarray) -> dict[str, SourceLists]:
    return {n: SourceLists(s.ids[rows], s.scores[rows]) for n, s in lists.items()}


def learn_fill(
    lists: dict[str, SourceLists], targets: np.ndarray, names: list[str], config: FillTuneConfig
) -> dict[str, float]:
    """Per-source log-rank weights: a logistic regression of "is the target" on each source's
    ``log(rank)`` (unlisted: ``log(2 * depth)``) over the union of the lists; non-negative."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(config.seed)
    n_sources = len(names)
    features: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for start in range(0, len(targets), config.batch):
        rows = np.arange(start, min(start + config.batch, len(targets)))
        part = _rows(lists, rows)
        width = sum(part[n].ids.shape[1] for n in names)
        union = merge(part, dict.fromkeys(names, 1.0), width, names, guaranteed=0)
        ok = union.ids >= 0  # (B, W)
        label = union.ids == targets[rows][:, None]  # (B, W)
        keep = ok & (label | (rng.random(ok.shape) < config.negative_share))
        ranks = union.source_ranks[keep].astype(np.float64)  # (R, S)
        widths = np.array([part[n].ids.shape[1] for n in names], dtype=np.float64)
        features.append(log_rank(ranks, widths))
        labels.append(label[keep])
    x, y = np.concatenate(features), np.concatenate(labels)
    if y.all() or not y.any():
        return dict.fromkeys(names, 1.0)  # nothing to learn from: equal weights
    model = LogisticRegression(max_iter=1000).fit(x, y)
    weights = np.maximum(-model.coef_[0], 0.0)  # a better rank (smaller log) must not count less
    if not weights.any():
        weights = np.ones(n_sources)
    return {n: round(float(w / weights.max()), 4) for n, w in zip(names, weights, strict=True)}


def _hits(
    lists: dict[str, SourceLists], targets: np.ndarray, retriever: Retriever, cfg: RetrievalConfig
) -> np.ndarray:
    """(B,) whether each target is among the merged candidates under ``cfg``."""
    batch = Retriever(retriever.sources, cfg).merge(lists)
    return (batch.ids == targets[:, None]).any(axis=1)


def tune_fill(
    retriever: Retriever, eval_set: EvalSet, config: FillTuneConfig | None = None
) -> tuple[RetrievalConfig, dict[str, Any]]:
    """The retrieval config with the fill and quota share that reach the most ``eval_set``
    targets on users the fill was not learned from; and a report of every option tried."""
    config = config or FillTuneConfig()
    given = retriever.config
    if len(eval_set) < 4:
        return given, {"chosen": "as given", "reason": f"{len(eval_set)} users: too few to choose"}
    rng = np.random.default_rng(config.seed)
    rows = np.sort(rng.permutation(len(eval_set))[: config.max_users])
    lists = _lists(retriever, eval_set, rows, config.batch)
    targets = eval_set.targets[rows]
    half = np.zeros(len(rows), dtype=bool)
    half[rng.permutation(len(rows))[: len(rows) // 2]] = True  # True: learn; False: choose
    names = retriever.names
    weights = learn_fill(_rows(lists, np.flatnonzero(half)), targets[half], names, config)
    check, check_targets = _rows(lists, np.flatnonzero(~half)), targets[~half]
    base = _hits(check, check_targets, retriever, given)
    options: dict[str, Any] = {"as given": {"recall": round(float(base.mean()), 4)}}
    best, best_gain, best_cfg = "as given", 0.0, given
    for share in config.quota_shares:
        cfg = replace(given, quota_share=share, fill_weights=tuple(weights.items()))
        diff = _hits(check, check_targets, retriever, cfg).astype(float) - base
        gain, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
        name = f"log-rank fill, quota share {share:g}"
        options[name] = {"recall": round(float(base.mean()) + gain, 4), "gain_se": round(se, 4)}
        if gain > best_gain and gain >= config.z * se:
            best, best_gain, best_cfg = name, gain, cfg
    report = {
        "chosen": best,
        "options": options,
        "fill_weights": weights,
        "users": {"learn": int(half.sum()), "choose": int((~half).sum())},
        "metric": f"candidate recall@{given.total} on validation targets",
    }
    return best_cfg, report
