"""Online feature fetch: an in-process cache over Feast's online store, and Feast's own call.

Items. Every materialized item row is read from the online store in bulk (Feast's
``OnlineStore.online_read`` through ``FeatureStore.provider``, the same read
``get_online_features`` does) once per materialization version into one dense float32 matrix.
After :meth:`OnlineFeatures.align` the matrix is in the serving order (the bundle's item index),
so a request for hundreds of candidates is one numpy gather: microseconds.

Users. Each materialization writes the user view's batch source (one parquet file, one
timestamp for every row) and then materializes exactly those rows into the online store. When
that file carries the marker's timestamp and holds at most ``user_cache_size`` users, its rows
are loaded once per version into one dense matrix (tens of milliseconds for 100k users), so a
known user's row is a dictionary lookup. A row read from the store would cost one store read per
first sighting of a user: on SQLite about 0.05 ms back to back, but 0.2-0.5 ms on a worker that
idled between requests, and with the event log's read, SQLite's code on every request cost a
served recommend about 0.6 ms of CPU at 200 requests/s (``benchmarks/load.py``). Users pushed
since the materialization (:meth:`OnlineFeatures.forget`), and users the file lacks, are read
from the online store on first use (one batched ``online_read`` for the misses of a call) and
kept in a bounded LRU dictionary. A cache size of 0 keeps no user in process: every read goes to
the store.

Invalidation. Both caches belong to one materialization version. Each call ``stat``s the marker
file written by :meth:`features.store.FeatureRepo.materialize` (or only every
``check_interval_s`` seconds) and, when it changed, reloads the items and drops the users.
Calls within a millisecond of the last look share it: a ranked request reads its candidates,
its history's items and its user in three calls, and under load a ``stat`` costs ~15 us of CPU
on a virtual machine (against ~4 back to back).

:func:`feast_reference` is the side-by-side reference: one ``FeatureStore.get_online_features``
call with the ranker's FeatureService for the same rows.
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from feast import FeatureStore, FeatureView
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value

from features import pushed
from features.definitions import ITEM_VIEWS, RANKER_VERSION, USER_VIEWS
from features.tables import ITEM_FEATURES, USER_FEATURES

READ_CHUNK = 1000  # entity keys per online_read call (SQLite binds one variable per key)
SAME_LOOK_S = 0.001  # calls this close to the last look at the marker share it (module doc)


class OnlineFeatures:
    """Cached online features of one Feast repository (see the module doc)."""

    def __init__(
        self,
        store: FeatureStore,
        marker: Path,
        item_keys_path: Path,
        check_interval_s: float = 0.0,
        user_cache_size: int = 100_000,
        user_source_path: Path | None = None,
    ) -> None:
        self.store = store
        self._version = ""
        self._marker = Path(marker)
        self._item_keys_path = Path(item_keys_path)
        self._interval = check_interval_s
        self._user_cache_size = user_cache_size
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._clock = time.monotonic  # when the marker was last looked at (a test may set it)
        self._index: pd.Index = pd.Index([], dtype=object)
        # one NaN row at the end: lookups of unknown ids use index -1
        self._items = np.full((1, len(ITEM_FEATURES)), np.nan, dtype=np.float32)
        self._aligned_ids: np.ndarray | None = None
        self._aligned: np.ndarray | None = None
        self._users: OrderedDict[str, np.ndarray] = OrderedDict()
        self._user_source = None if user_source_path is None else Path(user_source_path)
        # the materialized rows (module doc): user id -> row of _snapshot, and who was pushed
        self._snapshot_rows: dict[str, int] = {}
        self._snapshot = np.empty((0, len(USER_FEATURES)), dtype=np.float32)
        self._snapshot_at = pd.Timestamp(0, tz="UTC")
        self._pushed: set[str] = set()
        # pushes since the materialization, by any process (features.pushed)
        self._journal = self._marker.with_name(pushed.JOURNAL)
        self._journal_stamp = pushed.stamp_of(self._journal)
        self._journal_seen: int | None = None
        self._journal_offset = 0
        self._views: dict[str, FeatureView] = {}  # registry lookups cost ~1 ms: once a version
        self.refresh()

    @property
    def version(self) -> str:
        """The materialization version served now ("" before the first materialization)."""
        self._check()
        return self._version

    # ------------------------------------------------------------------ public reads

    def align(self, item_ids: np.ndarray) -> None:
        """Fix the serving order: row ``i`` of :meth:`items_at` is ``item_ids[i]``."""
        self._aligned_ids = np.asarray(item_ids, dtype=object)
        self._aligned = self._items[self._rows(self._aligned_ids)]

    def items_at(self, idx: np.ndarray) -> np.ndarray:
        """(N, len(ITEM_FEATURES)) float32 for item indexes in the :meth:`align` order."""
        self._check()
        if self._aligned is None:
            raise RuntimeError("items_at needs the serving order: call align(item_ids) first")
        return self._aligned[idx]

    def items(self, item_ids: Sequence[str]) -> np.ndarray:
        """(N, len(ITEM_FEATURES)) float32 by item id; unknown ids give NaN rows."""
        self._check()
        return self._items[self._rows(item_ids)]

    def users(self, user_ids: Sequence[str]) -> np.ndarray:
        """(B, len(USER_FEATURES)) float32 by user id; unknown ids give NaN rows."""
        self._check()
        if self._snapshot_rows and self._journal_stamp.read() != self._journal_seen:
            self._read_journal()
        cache, snapshot, gone = self._users, self._snapshot_rows, self._pushed
        wanted = list(dict.fromkeys(user_ids))
        rows: dict[str, np.ndarray] = {}
        for uid in wanted:
            at = snapshot.get(uid)
            if at is not None and uid not in gone:
                rows[uid] = self._snapshot[at]
            elif uid in cache:  # a hit, taken before any eviction
                rows[uid] = cache[uid]
                cache.move_to_end(uid)
        misses = [u for u in wanted if u not in rows]
        if misses:
            view = self._views[next(iter(USER_VIEWS))]
            read = read_online(self.store, view, "user_id", misses, USER_FEATURES)
            rows.update(zip(misses, read, strict=True))
            # a cache of size 0 keeps nothing: every read goes to the store (a row kept "just
            # for this call" answered a later request without the store, hiding an outage)
            if self._user_cache_size > 0:
                cache.update(zip(misses, read, strict=True))
                while len(cache) > self._user_cache_size:
                    cache.popitem(last=False)
        out = np.empty((len(user_ids), len(USER_FEATURES)), dtype=np.float32)
        for i, uid in enumerate(user_ids):
            out[i] = rows[uid]
        return out

    def forget(self, user_ids: Sequence[str]) -> None:
        """Drop cached rows so the next read sees what was pushed for these users."""
        for uid in user_ids:
            self._users.pop(uid, None)
            if uid in self._snapshot_rows:
                self._pushed.add(uid)

    # ------------------------------------------------------------------ versions

    def refresh(self) -> bool:
        """Reload from the online store if a materialization happened; True when it did."""
        self._checked = self._clock()
        try:
            st = os.stat(self._marker)
        except FileNotFoundError:
            return False
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        if stamp == self._stamp:
            return False
        marker = json.loads(self._marker.read_text())
        version = str(marker["version"])
        self._stamp = stamp
        if version == self._version:
            return False
        self.store.refresh_registry()
        names = [*ITEM_VIEWS, *USER_VIEWS]
        self._views = {name: self.store.get_feature_view(name) for name in names}
        self._load_items()
        self._users.clear()
        self._load_users(marker.get("event_timestamp"))
        self._version = version
        return True

    def _check(self) -> None:
        if self._clock() - self._checked < max(self._interval, SAME_LOOK_S):
            return
        self.refresh()

    def _load_items(self) -> None:
        keys = pd.read_parquet(self._item_keys_path, columns=["item_id"])["item_id"]
        ids = keys.astype(str).tolist()
        blocks = [
            read_online(self.store, self._views[view], "item_id", ids, feats)
            for view, feats in ITEM_VIEWS.items()
        ]
        matrix = np.concatenate(blocks, axis=1)
        self._index = pd.Index(ids, dtype=object)
        nan_row = np.full((1, len(ITEM_FEATURES)), np.nan, dtype=np.float32)
        self._items = np.ascontiguousarray(np.concatenate([matrix, nan_row]))
        if self._aligned_ids is not None:
            self._aligned = self._items[self._rows(self._aligned_ids)]

    def _load_users(self, materialized_at: str | None) -> None:
        """The materialized user rows from the view's batch source (module doc), or none: no
        source, a cache size too small for them, or a file that does not carry the marker's
        timestamp ``materialized_at`` (another materialization is rewriting it)."""
        self._snapshot_rows, self._pushed = {}, set()
        self._snapshot = np.empty((0, len(USER_FEATURES)), dtype=np.float32)
        self._journal_seen, self._journal_offset = None, 0
        source = self._user_source
        if source is None or materialized_at is None or not source.is_file():
            return
        if self._journal_stamp.read() is None:
            return  # pushes by other processes could not be seen: read every user's row
        if pq.read_metadata(source).num_rows > self._user_cache_size:
            return
        at = pd.Timestamp(materialized_at)
        at = at.tz_localize("UTC") if at.tz is None else at.tz_convert("UTC")
        frame = pd.read_parquet(source, columns=["user_id", "event_timestamp", *USER_FEATURES])
        if not (pd.to_datetime(frame["event_timestamp"], utc=True) == at).all():
            return
        ids = frame["user_id"].astype(str).tolist()
        self._snapshot = np.ascontiguousarray(frame[list(USER_FEATURES)].to_numpy(np.float32))
        self._snapshot_rows = dict(zip(ids, range(len(ids)), strict=True))
        self._snapshot_at = at
        self._read_journal()

    def _read_journal(self) -> None:
        """Take the users pushed since the materialization from the journal's new lines."""
        seen = self._journal_stamp.read()  # before the read: a later push shows next time
        users, self._journal_offset = pushed.read_from(
            self._journal, self._journal_offset, self._snapshot_at
        )
        self.forget(sorted(users))
        self._journal_seen = seen

    def _rows(self, item_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        return self._index.get_indexer(
            pd.Index(np.asarray(item_ids, dtype=object))
        )  # -1 -> NaN row


def _entity_key(join_key: str, value: str) -> EntityKey:
    return EntityKey(join_keys=[join_key], entity_values=[Value(string_val=value)])


def read_online(
    store: FeatureStore, fv: FeatureView, join_key: str, ids: Sequence[str], feats: tuple[str, ...]
) -> np.ndarray:
    """(len(ids), len(feats)) float32 straight from the online store; missing -> NaN."""
    out = np.full((len(ids), len(feats)), np.nan, dtype=np.float32)
    col = {f: j for j, f in enumerate(feats)}
    for start in range(0, len(ids), READ_CHUNK):
        keys = [_entity_key(join_key, v) for v in ids[start : start + READ_CHUNK]]
        rows = store.provider.online_read(
            config=store.config, table=fv, entity_keys=keys, requested_features=list(feats)
        )
        for i, (_, values) in enumerate(rows, start=start):
            if not values:
                continue
            for name, value in values.items():
                j, kind = col.get(name), value.WhichOneof("val")
                if j is not None and kind is not None:
                    out[i, j] = getattr(value, kind)
    return out


def feast_reference(
    store: FeatureStore, user_id: str, item_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Feast's own SDK path for the same rows: one ``get_online_features`` call with the
    ``RANKER_VERSION`` FeatureService over (user, item) rows.

    Returns ``(user (1, len(USER_FEATURES)), items (N, len(ITEM_FEATURES)))`` float32, None->NaN.
    """
    n = len(item_ids)
    response = store.get_online_features(
        features=store.get_feature_service(RANKER_VERSION),
        entity_rows={"user_id": [user_id] * n, "item_id": list(item_ids)},
    ).to_dict()

    def block(names: tuple[str, ...]) -> np.ndarray:
        cols = [[np.nan if v is None else v for v in response[f]] for f in names]
        return np.asarray(cols, dtype=np.float32).T.reshape(n, len(names))

    users = block(USER_FEATURES)[:1] if n else np.full((1, len(USER_FEATURES)), np.nan, "f4")
    return users, block(ITEM_FEATURES)
