"""Training rows for the rankers, and the rankers' training entry point.

Rows come from the same retriever that serves: for each user's validation target, the merged
candidates of their training history, labelled 1 where the candidate is the target. Every
candidate of the list is a hard negative (some source's top pick). By default every candidate
is kept, as the ranker sees them when serving. A sampled tail (``tail`` < the list's rest) is
sampled blind to the label: a positive in the tail stays only where the sample took it. Adding
it wherever it sat (as this module once did) made tail rows ~9x likelier positive in training
than when serving, and the ranker learned to lift the tail: on ML-100k held-out validation
users it scored NDCG@10 0.031 against the fusion's 0.113.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from models.ranker_base import RankerModel
from models.ranker_registry import RANKERS, available_rankers, check_rankers, make_ranker
from recsys.data.sequences import EncodedDataset
from recsys.data.split import EvalSet
from recsys.ranking.choose import DEFAULT_BLENDS
from recsys.ranking.features import (
    DEFAULT_CONTEXT,
    FeatureSource,
    FrameSpec,
    build_frame,
    check_context,
)
from recsys.ranking.frame import RankingFrame, select_groups
from recsys.retrieval.retriever import Retriever

# On the 20k-user demo shop (one run, same selection users): 5.9M rows (all 11.9k groups) fit
# in 180 s with selection NDCG@10 LightGBM 0.3906 / DLRM 0.3876; 2M rows in 61 s, 0.3876 /
# 0.3868; 1M in 25 s, 0.3868 / 0.3748; merged 0.3156. The selection set's standard error is
# ~0.006, so 2M rows lose nothing measurable there while the first `recsys serve` is 2 min sooner.
DEMO_MAX_ROWS = 2_000_000


@dataclass(frozen=True)
class RankerTrainConfig:
    # default: every registered ranker this machine can train (no dlrm without TorchRec)
    rankers: tuple[str, ...] = field(default_factory=available_rankers)
    head: int = 500  # the merged list's top slots, always kept
    tail: int = 0  # rows sampled (label-blind) from the rest of the list
    max_users: int | None = 30_000  # training groups drawn from the validation users
    # Groups are added (users in a seeded random order) until this many rows are kept; None =
    # every group. The demo caps it (DEMO_MAX_ROWS) to be ready sooner.
    max_rows: int | None = None
    # Earlier time folds (recsys.ranking.folds): fold k refits the sources on every sequence
    # without its last k items and adds one group per training user, labelled with the item
    # before them. 0 = the validation items alone. The folds share max_users and max_rows.
    # Chosen on held-out validation users (selection NDCG@10 of LightGBM, mean of 3 seeds):
    # Industrial 0.1219 / 0.1262 / 0.1278 with 0 / 1 / 2 folds; Beauty (seed 0, 7k groups
    # already) 0.0856 / 0.0858 with 0 / 1.
    folds: int = 2
    seed: int = 0
    batch: int = 512  # users retrieved at a time
    # Share of the validation users held out from ranker training: the served order (merged,
    # a ranker, or a blend) is chosen on them; at most select_max_users of them are scored.
    select_share: float = 0.3
    select_max_users: int | None = 10_000
    blends: tuple[float, ...] = DEFAULT_BLENDS  # merged-order weights tried in the blend
    z: float = 1.0  # standard errors a ranker must beat the fusion by (recsys.ranking.choose)
    # Choose the merge's fill and quota share on the rankers' validation users before their
    # rows are built (recsys.retrieval.tune); the bundle then serves that merge.
    tune_fill: bool = True
    # Request-time columns the rankers read (recsys.ranking.features.CONTEXT_FEATURES); the
    # recency and co-visitation link columns are opt-in (see DEFAULT_CONTEXT for why).
    context: tuple[str, ...] = DEFAULT_CONTEXT
    # ranker name -> fields of its own config, e.g. {"dlrm": {"workers": 2}} trains the DLRM
    # under torchrun on two workers, {"lightgbm": {"n_estimators": 100}}
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_rankers(self.rankers)
        check_context(self.context)
        if self.folds < 0:
            raise ValueError(f"folds must be >= 0 (0 = validation items only), got {self.folds}")
        if not 0.0 < self.select_share < 1.0:
            raise ValueError(f"select_share must be in (0, 1), got {self.select_share}")
        bad = [w for w in self.blends if not 0.0 < w < 1.0]
        if bad:
            raise ValueError(f"blend weights must be in (0, 1) (0 and 1 are always tried): {bad}")
        unknown = sorted(set(self.options) - set(RANKERS))
        if unknown:
            raise ValueError(f"options for unknown ranker(s) {unknown}; valid: {sorted(RANKERS)}")
        # a bad field fails now rather than after the candidates were retrieved
        for name in set(self.rankers) & set(self.options):
            make_ranker(name, self.seed, **self.options[name])


def concat_frames(frames: Sequence[RankingFrame]) -> RankingFrame:
    first = frames[0]
    return RankingFrame(
        dense=np.concatenate([f.dense for f in frames]),
        dense_names=first.dense_names,
        sparse=np.concatenate([f.sparse for f in frames]),
        sparse_names=first.sparse_names,
        cardinality=first.cardinality,
        group=np.concatenate([f.group for f in frames]),
        item=np.concatenate([f.item for f in frames]),
        label=None if first.label is None else np.concatenate([f.label for f in frames]),
    )


def subset(eval_set: EvalSet, rows: np.ndarray) -> EvalSet:
    return EvalSet(eval_set.users[rows], eval_set.history.select(rows), eval_set.targets[rows])


def split_users(eval_set: EvalSet, share: float, seed: int) -> tuple[EvalSet, EvalSet]:
    """(fit, held out): a seeded ``share`` of the users held out, at least one each side."""
    if len(eval_set) < 2:
        raise ValueError(f"{len(eval_set)} validation user(s): need 2 to fit and to choose")
    order = np.random.default_rng(seed).permutation(len(eval_set))
    n_out = min(max(1, round(share * len(order))), len(order) - 1)
    return subset(eval_set, np.sort(order[n_out:])), subset(eval_set, np.sort(order[:n_out]))


def training_frame(
    retriever: Retriever,
    eval_set: EvalSet,
    enc: EncodedDataset,
    features: FeatureSource,
    spec: FrameSpec,
    config: RankerTrainConfig,
    progress: bool = False,
) -> RankingFrame:
    """Labelled rows for (up to ``max_users`` of) ``eval_set``'s users, in a seeded random
    order until ``max_rows`` rows are kept: each list's head and a seeded, label-blind sample
    of its tail; groups without their positive are dropped."""
    rng = np.random.default_rng(config.seed)
    rows = rng.permutation(len(eval_set))  # a random order, so that a row budget stops anywhere
    if config.max_users is not None:
        rows = rows[: config.max_users]
    frames: list[RankingFrame] = []
    kept = 0
    batches = range(0, len(rows), config.batch)
    for start in tqdm(batches, desc="ranking rows", disable=not progress, unit="batch"):
        if config.max_rows is not None and kept >= config.max_rows:
            break
        chunk = np.sort(rows[start : start + config.batch])
        history = eval_set.history.select(chunk)
        targets = eval_set.targets[chunk]
        batch, _ = retriever.retrieve(history)
        keep = np.zeros(batch.ids.shape, dtype=bool)
        keep[:, : config.head] = True
        tail = batch.ids.shape[1] - config.head
        if tail > 0:
            take = np.argsort(rng.random((len(chunk), tail)), axis=1)[:, : config.tail]
            np.put_along_axis(keep, take + config.head, True, axis=1)
        user_ids = [str(u) for u in enc.user_ids[eval_set.users[chunk]]]
        frame = build_frame(spec, batch, history, user_ids, features, targets, keep)
        # a group without its positive teaches a pairwise ranker nothing
        frames.append(select_groups(frame, np.flatnonzero(frame.positives() > 0)))
        kept += frames[-1].n_rows
    return concat_frames(frames)


def fit_rankers(
    train: RankingFrame, config: RankerTrainConfig, progress: bool = False
) -> tuple[dict[str, RankerModel], dict[str, Any]]:
    """Fit each configured ranker (early stopping on held-out groups); models and reports."""
    models: dict[str, RankerModel] = {}
    report: dict[str, Any] = {}
    for name in config.rankers:
        started = time.perf_counter()
        opts = dict(config.options.get(name, {}))
        models[name] = make_ranker(name, config.seed, progress, **opts).fit(train)
        report[name] = {"fit_seconds": round(time.perf_counter() - started, 3)}
    report["rows"] = {"train": int(train.n_rows), "groups": len(train.group)}
    report["config"] = asdict(config)
    return models, report
