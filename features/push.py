"""Push live events into Feast's online store: the ``user_activity`` rows of the users they touch.

:class:`EventPusher` turns a batch of :class:`recsys.events.Event` into updated
``user_activity`` rows and writes them with Feast's own write path,
``FeatureStore.write_to_online_store`` (the batch view needs no PushSource for that), so that
``get_online_features`` and :class:`features.online.OnlineFeatures` read the new values.

What a row is computed from. Every user feature of :mod:`features.tables` is a function of the
user's *distinct* items, each with its strongest event (the form of
:func:`recsys.data.sequences.encode`), plus the catalog. The stored row is a summary that cannot
be updated on its own: whether an event's item is new to the user (``n_items``), whether its
category is (``n_categories``), which category now wins (the preferred codes) or where the
median price moves depends on the items behind it. So the pusher keeps, per user it touched,
that item set: the items the stored row was computed from (``history``, the training split of
the snapshot, see :func:`snapshot_history`) plus every pushed event, and recomputes the row from
it with the rules of :mod:`features.tables`. Item prices and category codes come from the item
rows of the same online store. Users unknown to the store get a row built from their events
alone. An item keeps its strongest event, so pushing an event twice (or events already in the
snapshot) changes nothing: :meth:`EventPusher.push` is idempotent.

Updated (exactly as a rebuild of the tables over the snapshot items plus the events would give,
up to float32 rounding of the stored prices):

- ``n_items``, ``n_categories``: distinct items and distinct known leaf categories;
- ``cart_share``, ``purchase_share``: shares of those items carted or bought;
- ``pref_category_code``, ``pref_top_code``: most frequent leaf / top-level category, ties to
  the lowest code;
- ``price_median``, ``price_band``: median price of the items and its catalog-quantile band.

Kept as stored (NaN for new users): ``recency`` and ``active_span``. Both are measured on the
snapshot's clock, against the latest training timestamp and in days for unix timestamps or in
*positions* for ordinal ones. A live event (unix seconds, after the snapshot) has no honest
place on that clock. Recency would go below zero, and an ordinal span cannot take seconds, so
the ranker keeps the values it was trained with until the next materialization.

Timestamps. A pushed row is stamped ``max(now, previous stamp + 1 µs)`` (the previous stamp is
the materialization's or this pusher's last write for the user), because Feast online stores
keep the newest row per entity and Redis drops a write that is not newer than the stored row.

Operation. One :class:`EventPusher` writes a store at a time (it reads, modifies and writes
rows: two writers would lose updates); :meth:`~EventPusher.push` is thread-safe. Its per-user
state lives in memory. After a restart, push the event log once
(``pusher.push(list(log.events()))``: idempotent) so that later pushes build on every logged
event. A new materialization of the repository (another version in its marker) drops that
state: the new snapshot is the base again, with the ``history`` given to the pusher.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import numpy as np
import pandas as pd

from features import pushed
from features.definitions import USER_VIEWS, source_path
from features.online import OnlineFeatures
from features.store import FeatureRepo
from features.tables import ITEM_FEATURES, N_PRICE_BANDS, USER_FEATURES
from recsys.data.sequences import EVENT_STRENGTH, Sequences
from recsys.events import Event, UnknownEventItemError

HistoryFn = Callable[[str], Iterable[tuple[str, int]]]
"""``user_id -> (item_id, strength)`` pairs: the distinct items (strongest event, an index into
``recsys.data.contract.EVENTS``) the user's stored row was computed from; empty for unknown
users."""

USER_VIEW = next(iter(USER_VIEWS))  # "user_activity"
KEPT: tuple[str, ...] = ("recency", "active_span")
"""User features a push keeps as stored (see the module doc)."""

_CART, _PURCHASE = EVENT_STRENGTH["cart"], EVENT_STRENGTH["purchase"]
_PRICE = ITEM_FEATURES.index("price")
_LEAF = ITEM_FEATURES.index("category_code")  # never NaN for a materialized item
_TOP = ITEM_FEATURES.index("category_top_code")
_ONE_US = timedelta(microseconds=1)


def snapshot_history(user_ids: Sequence[str] | np.ndarray, item_ids: Sequence[str] | np.ndarray,
                     train: Sequences) -> HistoryFn:  # fmt: skip
    """The :data:`HistoryFn` of feature tables built by ``build_feature_tables(ds, enc, train)``.

    ``user_ids`` / ``item_ids`` map ``train``'s user rows and item indexes to ids (an
    ``EncodedDataset``'s or an artifact bundle's). For a bundle, whose ``sequences`` are full
    histories, the online tables were built from ``bundle.fitted_on()``.
    """
    if train.n_users != len(user_ids):
        raise ValueError(f"train has {train.n_users} users but {len(user_ids)} user ids were given")
    rows = {str(u): i for i, u in enumerate(user_ids)}
    items = np.asarray(item_ids, dtype=object)

    def history(user_id: str) -> list[tuple[str, int]]:
        row = rows.get(user_id)
        if row is None:
            return []
        lo, hi = int(train.indptr[row]), int(train.indptr[row + 1])
        ids = items[train.items[lo:hi]]
        return [(str(i), int(s)) for i, s in zip(ids, train.strength[lo:hi], strict=True)]

    return history


@dataclass
class _UserState:
    items: dict[str, int]  # item id -> strongest event index
    kept: dict[str, float]  # KEPT features as stored (NaN for a user new to the store)
    stamp: pd.Timestamp  # event_timestamp of the newest row written for the user


class EventPusher:
    """Writes the ``user_activity`` rows of the users a batch of events touches (module doc).

    ``repo`` is an applied and materialized :class:`features.store.FeatureRepo`; give the
    pusher its own instance (its Feast store and item cache are then not shared with request
    threads). ``history`` says which items the stored rows were computed from
    (:func:`snapshot_history`).
    """

    def __init__(self, repo: FeatureRepo, history: HistoryFn) -> None:
        self.repo = repo
        self.history = history
        self._lock = threading.Lock()
        self._online: OnlineFeatures | None = None
        self._version = ""
        self._floor = pd.Timestamp(0, tz="UTC")  # the materialization's event_timestamp
        self._edges = np.zeros(0)
        self._users: dict[str, _UserState] = {}

    def push(self, events: Sequence[Event]) -> pd.DataFrame:
        """Apply ``events`` and write the rows of the users they touch; returns those rows.

        The returned frame is what was written: ``user_id``, ``event_timestamp`` and
        ``USER_FEATURES`` (float32), one row per touched user in order of first appearance.
        An event whose item the repository's item table lacks raises
        :class:`recsys.events.UnknownEventItemError` (a ``ValueError`` naming the item) before
        anything is applied or written.
        """
        events = list(events)
        with self._lock:
            online = self._sync()
            known = ~np.isnan(online.items([e.item_id for e in events])[:, _LEAF])
            if not known.all():
                raise UnknownEventItemError(events[int(np.argmin(known))].item_id)
            users = list(dict.fromkeys(e.user_id for e in events))
            if not users:
                return _frame([], [], np.zeros((0, len(USER_FEATURES)), np.float32))
            self._load([u for u in users if u not in self._users])
            for e in events:
                items = self._users[e.user_id].items
                items[e.item_id] = max(items.get(e.item_id, -1), EVENT_STRENGTH[e.event])
            now = pd.Timestamp.now(tz="UTC")
            stamps = [max(now, self._users[u].stamp + _ONE_US) for u in users]
            rows = np.stack([self._row(self._users[u], online) for u in users])
            frame = _frame(users, stamps, rows)
            self.repo.store.write_to_online_store(USER_VIEW, frame)
            pushed.record(self.repo.marker_path.with_name(pushed.JOURNAL), users, stamps)
            for user, stamp in zip(users, stamps, strict=True):
                self._users[user].stamp = stamp
            return frame

    # ------------------------------------------------------------------ state

    def _sync(self) -> OnlineFeatures:
        """The item cache of the current materialization; a new version drops the user state."""
        if self._online is None:
            self._online = self.repo.online()
        online = self._online
        version = online.version
        if not version:
            raise RuntimeError(
                f"{self.repo.root} has not been materialized: run FeatureRepo.materialize first"
            )
        if version != self._version:
            marker = cast(dict[str, Any], self.repo.marker())  # present: there is a version
            self._floor = pd.Timestamp(marker["event_timestamp"])
            ids = pd.read_parquet(self.repo.root / source_path("item_catalog"), columns=["item_id"])
            prices = online.items(ids["item_id"].astype(str).tolist())[:, _PRICE].astype(np.float64)
            prices = prices[~np.isnan(prices)]
            quantiles = np.linspace(0, 1, N_PRICE_BANDS + 1)[1:-1]
            self._edges = np.quantile(prices, quantiles) if len(prices) else np.zeros(0)
            self._users.clear()
            self._version = version
        return online

    def _load(self, users: list[str]) -> None:
        """Start the state of ``users`` from their stored rows (Feast's read) and history."""
        if not users:
            return
        refs = [f"{USER_VIEW}:{f}" for f in ("n_items", *KEPT)]
        stored = self.repo.store.get_online_features(
            features=refs, entity_rows=[{"user_id": u} for u in users]
        ).to_dict()
        for i, user in enumerate(users):
            in_store = stored["n_items"][i] is not None
            kept = {f: _float(stored[f][i]) if in_store else np.nan for f in KEPT}
            items: dict[str, int] = {}
            for item, strength in self.history(user) if in_store else ():
                items[item] = max(items.get(item, -1), int(strength))
            self._users[user] = _UserState(items, kept, self._floor)

    def _row(self, state: _UserState, online: OnlineFeatures) -> np.ndarray:
        """One ``USER_FEATURES`` row by the rules of :func:`features.tables._user_activity`."""
        feats = online.items(list(state.items)).astype(np.float64)
        strength = np.fromiter(state.items.values(), dtype=np.int64, count=len(state.items))
        leaf = np.nan_to_num(feats[:, _LEAF]).astype(np.int64)
        top = np.nan_to_num(feats[:, _TOP]).astype(np.int64)
        prices = feats[:, _PRICE][~np.isnan(feats[:, _PRICE])]
        n = len(strength)
        median = float(np.median(prices)) if len(prices) else np.nan
        band = np.nan
        if len(self._edges) and not np.isnan(median):
            band = float(np.searchsorted(self._edges, median, side="right") + 1)
        values = {
            "n_items": float(n),
            "n_categories": float(len(np.unique(leaf[leaf > 0]))),
            "cart_share": np.isin(strength, (_CART, _PURCHASE)).sum() / n,
            "purchase_share": (strength == _PURCHASE).sum() / n,
            **state.kept,
            "pref_category_code": _preferred(leaf),
            "pref_top_code": _preferred(top),
            "price_median": median,
            "price_band": band,
        }
        return np.array([values[f] for f in USER_FEATURES], dtype=np.float32)


def _preferred(codes: np.ndarray) -> float:
    """Most frequent non-zero code (ties: the lowest), 0 when none is known."""
    values, counts = np.unique(codes[codes > 0], return_counts=True)
    return float(values[np.argmax(counts)]) if len(values) else 0.0


def _float(value: Any) -> float:
    return np.nan if value is None else float(value)


def _frame(users: list[str], stamps: list[pd.Timestamp], rows: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(USER_FEATURES), dtype=np.float32)
    frame.insert(0, "user_id", pd.Series(users, dtype=object))
    frame.insert(1, "event_timestamp", pd.Series(stamps, dtype="datetime64[ns, UTC]"))
    return frame
