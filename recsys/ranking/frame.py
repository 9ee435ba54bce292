"""The rows a ranker reads: one per (user, candidate), grouped by user.

Every ranker (LightGBM LambdaRank, the TorchRec DLRM) trains and scores on this one layout,
so the ranking stage builds it once per request and any of them (native or ONNX) takes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankingFrame:
    dense: np.ndarray  # (N, D) float32; NaN where a value is unknown (LightGBM handles it)
    dense_names: tuple[str, ...]  # (D,)
    sparse: np.ndarray  # (N, S) int64 categorical codes in [0, cardinality); 0 = unknown
    sparse_names: tuple[str, ...]  # (S,)
    cardinality: tuple[int, ...]  # (S,) table size of each sparse column
    group: np.ndarray  # (Q,) int64 rows per query (user), contiguous, sum == N
    item: np.ndarray  # (N,) int64 item index of each row
    label: np.ndarray | None = None  # (N,) float32 relevance (1 = the held-out item)

    def __post_init__(self) -> None:
        n = len(self.dense)
        if self.dense.shape[1:] != (len(self.dense_names),):
            raise ValueError(f"dense {self.dense.shape} vs {len(self.dense_names)} names")
        if self.sparse.shape != (n, len(self.sparse_names)):
            raise ValueError(f"sparse {self.sparse.shape} vs ({n}, {len(self.sparse_names)})")
        if len(self.cardinality) != len(self.sparse_names):
            raise ValueError("one cardinality per sparse column")
        if int(self.group.sum()) != n or len(self.item) != n:
            raise ValueError(
                f"group sums to {int(self.group.sum())}, item has {len(self.item)}, rows {n}"
            )
        if self.label is not None and len(self.label) != n:
            raise ValueError(f"label has {len(self.label)} rows, frame has {n}")
        if n and self.sparse.size:
            over = self.sparse.max(axis=0) >= np.asarray(self.cardinality)
            if over.any() or self.sparse.min() < 0:
                bad = [self.sparse_names[i] for i in np.flatnonzero(over)]
                raise ValueError(f"sparse codes out of range in {bad or 'some column (<0)'}")

    @property
    def n_rows(self) -> int:
        return len(self.dense)

    def offsets(self) -> np.ndarray:
        """(Q + 1,) start row of each group, then N."""
        return np.concatenate([[0], np.cumsum(self.group)]).astype(np.int64)

    def positives(self) -> np.ndarray:
        """(Q,) labelled-positive rows per group (0 for empty groups)."""
        if self.label is None:
            raise ValueError("this frame has no labels")
        owner = np.repeat(np.arange(len(self.group)), self.group)  # (N,) group of each row
        return np.bincount(owner, weights=self.label > 0, minlength=len(self.group))


def group_rows(counts: np.ndarray) -> np.ndarray:
    """0..c-1 for every c in ``counts``, concatenated."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def select_groups(frame: RankingFrame, groups: np.ndarray) -> RankingFrame:
    """The sub-frame of the given groups (in that order)."""
    offsets = frame.offsets()
    lengths = frame.group[groups]
    rows = np.repeat(offsets[groups], lengths) + group_rows(lengths)
    return RankingFrame(
        dense=frame.dense[rows],
        dense_names=frame.dense_names,
        sparse=frame.sparse[rows],
        sparse_names=frame.sparse_names,
        cardinality=frame.cardinality,
        group=lengths,
        item=frame.item[rows],
        label=None if frame.label is None else frame.label[rows],
    )


def hold_out_groups(
    frame: RankingFrame, fraction: float, rng: np.random.Generator
) -> tuple[RankingFrame, RankingFrame | None]:
    """(the rest, a seeded ``fraction`` of the groups) for early stopping; (frame, None) when
    that share rounds to no group or to all of them."""
    n_valid = round(fraction * len(frame.group))
    if n_valid < 1 or n_valid >= len(frame.group):
        return frame, None
    order = rng.permutation(len(frame.group))
    return (
        select_groups(frame, np.sort(order[n_valid:])),
        select_groups(frame, np.sort(order[:n_valid])),
    )


def group_ndcg(scores: np.ndarray, frame: RankingFrame, k: int = 10) -> float:
    """Mean NDCG@k over groups with one positive (ties broken by row order).

    A group whose positive is absent counts 0, so this is the full-pipeline figure only when
    every evaluated user has a group.
    """
    total, n = 0.0, 0
    if frame.label is None:
        raise ValueError("group_ndcg needs labels")
    for start, end in zip(frame.offsets()[:-1], frame.offsets()[1:], strict=True):
        lab = frame.label[start:end]
        n += 1
        if not (lab > 0).any():
            continue
        order = np.argsort(-scores[start:end], kind="stable")[:k]
        hits = np.flatnonzero(lab[order] > 0)
        if len(hits):
            total += 1.0 / np.log2(hits[0] + 2.0)
    return total / max(n, 1)
