"""Why the ranker scored an item as it did: each feature's additive share of the score.

For LightGBM these are exact TreeSHAP values (``pred_contrib``): the shares and the model's
bias add up to the item's score. They explain the ranker's score; where the served order blends
it with the merged fusion (the bundle's chosen order), the blend's own weight is not split. The
DLRM has no exact additive split of its score (its interaction layer multiplies embeddings), and
a gradient saliency would be an approximation a reader could mistake for one, so it gives none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.ranking.ranker import Ranker
from recsys.retrieval.merge import CandidateBatch
from recsys.retrieval.retriever import history_of

TOP = 3  # the largest shares by magnitude, per item


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float  # the feature's value for this item
    contribution: float  # its share of the ranker's score (same units as the score)


def rows_of(batch: CandidateBatch, slots: Sequence[int]) -> np.ndarray:
    """Frame rows of one request's candidate ``slots`` (rows run over the filled slots)."""
    filled = np.flatnonzero(batch.ids[0] >= 0)  # (F,) slots holding a candidate
    where = {int(s): n for n, s in enumerate(filled)}
    missing = [s for s in slots if int(s) not in where]
    if missing:
        raise ValueError(f"slots {missing} hold no candidate; filled: 0..{len(filled) - 1}")
    return np.array([where[int(s)] for s in slots], dtype=np.int64)


def contributions(
    ranker: Ranker,
    state: Mapping[str, Any],
    n_items: int,
    features: Any,
    slots: Sequence[int],
    top: int = TOP,
) -> list[list[Contribution]] | None:
    """Per slot, the ``top`` feature shares of the ranker's score; None when the ranker has no
    exact split (see the module docstring)."""
    explain = getattr(ranker.model, "contributions", None)
    if explain is None or not len(slots):
        return None
    from recsys.ranking.features import build_frame

    batch: CandidateBatch = state["candidates"]
    history = history_of(state["history"], n_items)
    frame = build_frame(ranker.spec, batch, history, [str(state["user_id"])], features)
    rows = rows_of(batch, slots)
    shares, values, names = explain(frame, rows)  # (R, F), (R, F), F names
    out = []
    for share, value in zip(shares, values, strict=True):
        best = np.argsort(-np.abs(share), kind="stable")[:top]
        out.append([Contribution(names[j], round(float(value[j]), 6),
                                 round(float(share[j]), 6)) for j in best])  # fmt: skip
    return out
