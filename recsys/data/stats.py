"""Descriptive statistics of a canonical dataset, as plain JSON-ready Python values.

Used to sanity-check an import (does Beauty have the published 22,363 users?) and to describe a
dataset next to evaluation results, where sparsity and popularity concentration explain much of
how hard a dataset is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.contract import EVENTS, Dataset

QUANTILES = {"p25": 0.25, "median": 0.5, "p75": 0.75, "p90": 0.9}


def distribution(values: pd.Series | np.ndarray) -> dict[str, float | int] | None:
    """min, p25, median, p75, p90, max and mean of a numeric sample; None when empty."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return None
    out: dict[str, float | int] = {"min": _number(arr.min())}
    for name, q in QUANTILES.items():
        out[name] = float(np.quantile(arr, q))
    out["max"] = _number(arr.max())
    out["mean"] = float(arr.mean())
    return out


def _number(x: float) -> float | int:
    """Whole numbers as int so counts print as counts; anything else as float."""
    return int(x) if float(x).is_integer() else float(x)


def popularity_share(item_counts: np.ndarray, n_items: int, fraction: float) -> float | None:
    """Share of interactions on the top ``fraction`` of the catalogue (at least one item).

    The denominator is the whole catalogue, not only items with interactions, because the
    catalogue is what a recommender ranks; items never interacted with are simply at the bottom.
    """
    total = int(item_counts.sum())
    if total == 0 or n_items == 0:
        return None
    k = max(1, math.ceil(fraction * n_items))
    top = np.sort(item_counts)[::-1][:k]
    return float(top.sum() / total)


def gini(item_counts: np.ndarray, n_items: int) -> float | None:
    """Gini coefficient of interactions over the catalogue (0 = uniform, 1 = one item has all)."""
    total = float(item_counts.sum())
    if total == 0 or n_items == 0:
        return None
    counts = np.zeros(n_items, dtype=np.float64)
    counts[: item_counts.size] = item_counts
    counts.sort()
    ranks = np.arange(1, n_items + 1, dtype=np.float64)
    return float((2 * (ranks * counts).sum()) / (n_items * total) - (n_items + 1) / n_items)


def dataset_stats(ds: Dataset) -> dict[str, Any]:
    """Counts, sparsity, events, per-user sequence shape, time span and popularity concentration."""
    inter = ds.interactions
    counts = ds.counts()
    n_users, n_items, n_inter = counts["users"], counts["items"], counts["interactions"]
    cells = n_users * n_items
    by_user = inter.groupby("user_id", sort=False)
    item_counts = inter["item_id"].value_counts().to_numpy()
    events = inter["event"].value_counts()
    # Contract order (weakest signal first) reads better than frequency order.
    per_event = {e: int(events[e]) for e in EVENTS if e in events.index}
    out: dict[str, Any] = {
        "name": ds.name,
        "counts": counts,
        "sparsity": float(1 - n_inter / cells) if cells else None,
        "distinct_user_item_pairs": len(inter[["user_id", "item_id"]].drop_duplicates()),
        "events": per_event,
        "sequence_length": distribution(by_user.size().to_numpy()),
        "distinct_items_per_user": distribution(by_user["item_id"].nunique().to_numpy()),
        "interactions_per_item": distribution(item_counts),
        "time": {
            "min_ts": int(inter["ts"].min()) if n_inter else None,
            "max_ts": int(inter["ts"].max()) if n_inter else None,
        },
        "popularity": {
            "top_1pct_share": popularity_share(item_counts, n_items, 0.01),
            "top_10pct_share": popularity_share(item_counts, n_items, 0.10),
            "gini": gini(item_counts, n_items),
        },
    }
    if "value" in inter.columns and inter["value"].notna().any():
        out["value"] = distribution(inter["value"].dropna().to_numpy())
    if "query" in inter.columns:
        out["interactions_with_query"] = int(inter["query"].notna().sum())
    if ds.users is not None:
        out["users_table_rows"] = len(ds.users)
    if ds.qrels is not None:
        out["qrels"] = len(ds.qrels)
    return out
