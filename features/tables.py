"""Item and user feature tables computed from the training split and the catalog.

Everything here is computed from the sequences given plus the catalog, never from the raw
interaction log: ``split.train`` (each user's distinct items without the held-out validation and
test targets) for the rows the rankers learn from, so that no label leaks into a feature; each
user's items without the test target for a refitted bundle's online store
(``TrainConfig.refit_with_valid``), the test target never.

Time. ``ts`` is unix seconds for most sources but an ordinal position in the user's line where
the source has no timestamps (S3-Rec Amazon Beauty). Values below that are differences of ``ts``
(item age, user recency, active span) are in days for unix timestamps and in positions for
ordinal ones. Recent-popularity windows are *fractions* of the observed time, never a fixed
number of days, so that both kinds work: with unix time a window ``f`` keeps the events in the
last ``f`` of the training time span; with ordinal positions, which are not comparable across
users (position 5 of one user is not the same moment as position 5 of another), it keeps the
events in the last ``f`` of each user's own training sequence, the only notion of "recent" such
data supports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from recsys.data.contract import EVENTS, Dataset
from recsys.data.sequences import EncodedDataset, Sequences

POPULARITY_WINDOWS: tuple[float, ...] = (0.05, 0.2, 0.5)
"""Recent-popularity windows as fractions of the observed training time (see module doc)."""

ITEM_ACTIVITY_FEATURES: tuple[str, ...] = (
    "pop_all",  # distinct training users who touched the item
    *(f"pop_w{round(f * 100):02d}" for f in POPULARITY_WINDOWS),  # the same in recent windows
    "log_pop",  # log1p(pop_all)
    "cart_rate",  # share of those users who carted or bought it (smoothed toward the mean)
    "purchase_rate",  # share who bought it (smoothed)
    "age",  # latest training ts - first training ts of the item (days or positions); NaN unseen
)
ITEM_CATALOG_FEATURES: tuple[str, ...] = (
    "price",  # NaN when unknown
    "price_rank",  # percentile of the price within the item's leaf category, in (0, 1]
    "category_code",  # leaf category path code, 0 = unknown (see category_codes)
    "category_top_code",  # top-level category code, 0 = unknown
    "brand_code",  # brand code, 0 = unknown
    "in_stock",  # 1.0 / 0.0, NaN when the catalog has no stock column
)
ITEM_FEATURES: tuple[str, ...] = (*ITEM_ACTIVITY_FEATURES, *ITEM_CATALOG_FEATURES)
USER_FEATURES: tuple[str, ...] = (
    "n_items",  # distinct training items (= interactions in the distinct-item sequence form)
    "n_categories",  # distinct known leaf categories among them
    "cart_share",  # share of the user's items carted or bought
    "purchase_share",  # share of the user's items bought
    "recency",  # latest training ts overall - the user's last training ts (days or positions)
    "active_span",  # the user's last - first training ts (days or positions)
    "pref_category_code",  # most frequent leaf category (ties: lowest code), 0 = unknown
    "pref_top_code",  # most frequent top-level category, 0 = unknown
    "price_median",  # median price of the user's items: the user's price band
    "price_band",  # 1..N_PRICE_BANDS bucket of price_median on catalog price quantiles
)
N_PRICE_BANDS = 5
RATE_PRIOR = 10.0  # pseudo-counts pulling the conversion rates of rare items to the mean
UNIX_THRESHOLD = 100_000_000  # ts at or above this (1973-03-03) are unix seconds
SECONDS_PER_DAY = 86_400.0

_CART, _PURCHASE = EVENTS.index("cart"), EVENTS.index("purchase")
CodeKind = Literal["category", "category_top", "brand"]


@dataclass(frozen=True)
class FeatureTables:
    """One row per item / user, ready to be written as Feast batch sources.

    ``event_timestamp`` is when the tables were computed (UTC): the features are a snapshot of
    the training split rather than a time series, and Feast online stores keep the newest row
    per entity, so a rebuilt table must carry a later timestamp to replace an earlier one.
    """

    items: pd.DataFrame  # item_id (str), event_timestamp (UTC), *ITEM_FEATURES (float64)
    users: pd.DataFrame  # user_id (str), event_timestamp (UTC), *USER_FEATURES (float64)


def build_feature_tables(ds: Dataset, enc: EncodedDataset, train: Sequences) -> FeatureTables:
    """Compute every item and user feature from ``train`` and the catalog.

    ``train`` must hold the users of ``enc`` in ``enc.user_ids`` order (``split.train``).
    """
    if train.n_users != len(enc.user_ids) or train.n_items != enc.n_items:
        raise ValueError(
            f"train has {train.n_users} users x {train.n_items} items but the encoded dataset "
            f"has {len(enc.user_ids)} x {enc.n_items}; pass leave_one_out(enc).train"
        )
    now = pd.Timestamp.now(tz="UTC")
    catalog = _catalog_frame(ds, enc)
    items = pd.DataFrame({"item_id": enc.item_ids.astype(str), "event_timestamp": now})
    for name, values in {**_item_activity(train), **_item_catalog(ds, enc, catalog)}.items():
        items[name] = np.asarray(values, dtype=np.float64)
    users = pd.DataFrame({"user_id": enc.user_ids.astype(str), "event_timestamp": now})
    for name, values in _user_activity(ds, enc, train, catalog).items():
        users[name] = np.asarray(values, dtype=np.float64)
    return FeatureTables(items[["item_id", "event_timestamp", *ITEM_FEATURES]],
                         users[["user_id", "event_timestamp", *USER_FEATURES]])  # fmt: skip


# ----------------------------------------------------------------------------- codes


def code_vocab(ds: Dataset, kind: CodeKind) -> tuple[str, ...]:
    """The sorted names behind a code: code ``k`` (1-based) is ``vocab[k - 1]``; 0 is unknown.

    The cardinality of a code (for an embedding table) is ``len(code_vocab(...)) + 1``.
    """
    names = _names(ds.items, kind)
    return tuple(sorted(set(names.dropna())))


def category_codes(ds: Dataset, enc: EncodedDataset) -> np.ndarray:
    """(I,) int64 leaf category code (full path) per item index of ``enc``; 0 = unknown."""
    return _codes(ds, enc, "category")


def category_top_codes(ds: Dataset, enc: EncodedDataset) -> np.ndarray:
    """(I,) int64 top-level category code per item index; 0 = unknown."""
    return _codes(ds, enc, "category_top")


def brand_codes(ds: Dataset, enc: EncodedDataset) -> np.ndarray:
    """(I,) int64 brand code per item index; 0 = unknown."""
    return _codes(ds, enc, "brand")


def _names(items: pd.DataFrame, kind: CodeKind) -> pd.Series:
    column = "brand" if kind == "brand" else "category"
    if kind not in ("category", "category_top", "brand"):
        raise ValueError(
            f"unknown code kind {kind!r}; valid: ['category', 'category_top', 'brand']"
        )
    if column not in items.columns:
        return pd.Series([None] * len(items), index=items.index, dtype=object)
    raw = items[column].astype("string").str.strip()
    if kind == "category":
        raw = raw.str.split(">").map(
            lambda parts: " > ".join(p.strip() for p in parts) if isinstance(parts, list) else None
        )
    elif kind == "category_top":
        raw = raw.str.split(">").str[0].str.strip()
    names = raw.astype(object)
    return names.where(names.map(lambda v: isinstance(v, str) and v != ""), None)


def _codes(ds: Dataset, enc: EncodedDataset, kind: CodeKind) -> np.ndarray:
    items = ds.items.set_index("item_id").reindex(enc.item_ids).reset_index()
    names = _names(items, kind)
    vocab = code_vocab(ds, kind)
    codes = pd.Index(vocab).get_indexer(pd.Index(names.fillna("\x00"))) + 1  # -1 (unknown) -> 0
    return codes.astype(np.int64)


def _catalog_frame(ds: Dataset, enc: EncodedDataset) -> pd.DataFrame:
    """Per item index: price, codes, stock."""
    items = ds.items.set_index("item_id").reindex(enc.item_ids)
    price = (
        items["price"].to_numpy(np.float64)
        if "price" in items.columns
        else np.full(enc.n_items, np.nan)
    )
    stock = (
        items["in_stock"].astype(float).to_numpy(np.float64)
        if "in_stock" in items.columns
        else np.full(enc.n_items, np.nan)
    )
    return pd.DataFrame(
        {
            "price": price,
            "category_code": category_codes(ds, enc),
            "category_top_code": category_top_codes(ds, enc),
            "brand_code": brand_codes(ds, enc),
            "in_stock": stock,
        }
    )


# ----------------------------------------------------------------------------- items


def _is_unix(ts: np.ndarray) -> bool:
    return len(ts) > 0 and int(ts.min()) >= UNIX_THRESHOLD


def _unit(ts: np.ndarray) -> float:
    return SECONDS_PER_DAY if _is_unix(ts) else 1.0


def _recency_fraction(train: Sequences) -> np.ndarray:
    """(N,) position of every training event in [0, 1] of observed time, 1 = most recent."""
    ts = train.ts.astype(np.float64)
    if len(ts) == 0:
        return ts
    if _is_unix(train.ts):
        span = ts.max() - ts.min()
        return (ts - ts.min()) / span if span > 0 else np.ones_like(ts)
    lengths = train.lengths
    pos = np.arange(len(ts)) - np.repeat(train.indptr[:-1], lengths)
    denom = np.repeat(np.maximum(lengths - 1, 1), lengths)
    return np.where(np.repeat(lengths, lengths) > 1, pos / denom, 1.0)


def _smoothed_rate(hits: np.ndarray, total: np.ndarray) -> np.ndarray:
    prior = hits.sum() / max(total.sum(), 1)
    return (hits + RATE_PRIOR * prior) / (total + RATE_PRIOR)


def _item_activity(train: Sequences) -> dict[str, np.ndarray]:
    n = train.n_items
    pop = np.bincount(train.items, minlength=n).astype(np.float64)
    out: dict[str, np.ndarray] = {"pop_all": pop}
    frac = _recency_fraction(train)
    for f, name in zip(POPULARITY_WINDOWS, ITEM_ACTIVITY_FEATURES[1:], strict=False):
        out[name] = np.bincount(train.items[frac >= 1.0 - f], minlength=n).astype(np.float64)
    out["log_pop"] = np.log1p(pop)
    strength = train.strength
    carted = np.bincount(train.items[(strength == _CART) | (strength == _PURCHASE)], minlength=n)
    bought = np.bincount(train.items[strength == _PURCHASE], minlength=n)
    out["cart_rate"] = _smoothed_rate(carted.astype(np.float64), pop)
    out["purchase_rate"] = _smoothed_rate(bought.astype(np.float64), pop)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, train.items, train.ts)
    age = np.full(n, np.nan)
    if len(train.ts):
        seen = pop > 0
        age[seen] = (train.ts.max() - first[seen]) / _unit(train.ts)
    out["age"] = age
    return out


def _item_catalog(ds: Dataset, enc: EncodedDataset, catalog: pd.DataFrame) -> dict[str, np.ndarray]:
    price = catalog["price"]
    leaf = catalog["category_code"].where(catalog["category_code"] > 0)
    price_rank = price.groupby(leaf).rank(pct=True, method="average")
    out = {name: catalog[name].to_numpy(np.float64) for name in ITEM_CATALOG_FEATURES
           if name in catalog.columns}  # fmt: skip
    out["price_rank"] = price_rank.reindex(catalog.index).to_numpy(np.float64)
    return out


# ----------------------------------------------------------------------------- users


def _preferred(users: np.ndarray, codes: np.ndarray, n_users: int) -> np.ndarray:
    """Most frequent non-zero code per user (ties: lowest code), 0 when none is known."""
    out = np.zeros(n_users, dtype=np.float64)
    known = codes > 0
    if not known.any():
        return out
    pairs = pd.DataFrame({"u": users[known], "c": codes[known]})
    counts = pairs.value_counts().reset_index(name="n")
    best = counts.sort_values(["u", "n", "c"], ascending=[True, False, True]).drop_duplicates("u")
    out[best["u"].to_numpy()] = best["c"].to_numpy(np.float64)
    return out


def _user_activity(
    ds: Dataset, enc: EncodedDataset, train: Sequences, catalog: pd.DataFrame
) -> dict[str, np.ndarray]:
    n_users, lengths = train.n_users, train.lengths
    users = train.user_index()
    safe = np.maximum(lengths, 1)
    strength = train.strength
    carted = np.bincount(users, (strength == _CART) | (strength == _PURCHASE), minlength=n_users)
    bought = np.bincount(users, strength == _PURCHASE, minlength=n_users)
    empty = lengths == 0
    leaf = catalog["category_code"].to_numpy()[train.items]
    distinct = pd.DataFrame({"u": users, "c": leaf})
    distinct = distinct[distinct["c"] > 0].drop_duplicates()
    n_categories = np.bincount(distinct["u"].to_numpy(), minlength=n_users).astype(np.float64)

    unit = _unit(train.ts)
    recency = np.full(n_users, np.nan)
    span = np.full(n_users, np.nan)
    if len(train.ts):
        last = train.ts[np.maximum(train.indptr[1:] - 1, 0)]
        first = train.ts[np.minimum(train.indptr[:-1], len(train.ts) - 1)]
        recency = np.where(empty, np.nan, (train.ts.max() - last) / unit)
        span = np.where(empty, np.nan, (last - first) / unit)

    prices = catalog["price"].to_numpy(np.float64)[train.items]
    median = pd.Series(prices).groupby(users).median().reindex(range(n_users)).to_numpy(np.float64)
    catalog_prices = catalog["price"].dropna().to_numpy(np.float64)
    band = np.full(n_users, np.nan)
    if len(catalog_prices):
        edges = np.quantile(catalog_prices, np.linspace(0, 1, N_PRICE_BANDS + 1)[1:-1])
        known = ~np.isnan(median)
        band[known] = np.searchsorted(edges, median[known], side="right") + 1
    top = catalog["category_top_code"].to_numpy()[train.items]
    return {
        "n_items": lengths.astype(np.float64),
        "n_categories": n_categories,
        "cart_share": np.where(empty, np.nan, carted / safe),
        "purchase_share": np.where(empty, np.nan, bought / safe),
        "recency": recency,
        "active_span": span,
        "pref_category_code": _preferred(users, leaf, n_users),
        "pref_top_code": _preferred(users, top, n_users),
        "price_median": median,
        "price_band": band,
    }
