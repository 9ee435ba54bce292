"""The runtime Feast repository: configuration, apply, materialize, and the online cache.

A :class:`FeatureRepo` lives in a directory the caller gives (an artifact bundle's subfolder, a
folder under ``var/``): ``feature_store.yaml`` (rendered from ``features/feature_store.yaml``),
``data/registry.db``, ``data/online_store.db`` (SQLite) and the parquet batch sources under
``data/sources/``. Nothing is written to the source tree. The directory is a normal Feast repo:
``feast -c ROOT feature-views list`` works on it.

After each materialization a marker file (``materialization.json``) is replaced atomically with
a new version; :class:`features.online.OnlineFeatures` compares its ``stat`` with the one it
loaded (a microsecond system call) and reloads from the online store when it changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

import pandas as pd
import yaml
from feast import FeatureStore

from features.definitions import ITEM_VIEWS, USER_VIEWS, VIEW_ENTITY, repo_objects, source_path
from features.online import OnlineFeatures
from features.tables import ITEM_FEATURES, USER_FEATURES, FeatureTables

TEMPLATE = Path(__file__).with_name("feature_store.yaml")
MARKER = "materialization.json"
ONLINE_STORES: tuple[str, ...] = ("sqlite", "redis")
ENV_ONLINE_STORE = "RECSYS_FEATURES_ONLINE_STORE"
ENV_REDIS_URL = "RECSYS_FEATURES_REDIS_URL"
OnlineStoreKind = Literal["sqlite", "redis"]


@dataclass(frozen=True)
class FeatureStoreConfig:
    """Which online store Feast uses and how the in-process cache behaves.

    ``redis_url`` is Feast's ``connection_string`` form (``host:port[,password=...,ssl=true]``).
    ``check_interval_s`` is how often the cache looks at the materialization marker (0: on
    every call, which costs one ``stat``); ``user_cache_size`` bounds the per-user cache.
    """

    online_store: OnlineStoreKind = "sqlite"
    redis_url: str = "localhost:6379"
    check_interval_s: float = 0.0
    user_cache_size: int = 100_000

    def __post_init__(self) -> None:
        if self.online_store not in ONLINE_STORES:
            raise ValueError(
                f"unknown online_store {self.online_store!r}; "
                f"valid values are {list(ONLINE_STORES)}"
            )
        if not self.redis_url:
            raise ValueError("redis_url is empty; expected Feast's 'host:port' form")
        if self.check_interval_s < 0:
            raise ValueError(f"check_interval_s must be >= 0, got {self.check_interval_s}")
        if self.user_cache_size < 0:
            raise ValueError(f"user_cache_size must be >= 0, got {self.user_cache_size}")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> FeatureStoreConfig:
        """Read ``RECSYS_FEATURES_ONLINE_STORE`` and ``RECSYS_FEATURES_REDIS_URL``."""
        env = os.environ if environ is None else environ
        kind = env.get(ENV_ONLINE_STORE, "sqlite").strip().lower() or "sqlite"
        if kind not in ONLINE_STORES:
            raise ValueError(
                f"{ENV_ONLINE_STORE}={kind!r} is not a known online store; "
                f"valid values are {list(ONLINE_STORES)}"
            )
        return cls(
            online_store=cast(OnlineStoreKind, kind),
            redis_url=env.get(ENV_REDIS_URL, cls.redis_url),
        )

    def repo_yaml(self) -> dict[str, Any]:
        """The runtime ``feature_store.yaml`` content: the template with the online store set."""
        with TEMPLATE.open() as f:
            raw: dict[str, Any] = yaml.safe_load(f)
        if self.online_store == "redis":
            raw["online_store"] = {"type": "redis", "connection_string": self.redis_url}
        return raw


class FeatureRepo:
    """A Feast feature repository rooted at a runtime directory (see the module doc)."""

    def __init__(self, root: Path, config: FeatureStoreConfig | None = None) -> None:
        self.root = Path(root)
        self.config = config if config is not None else FeatureStoreConfig.from_env()
        self._store: FeatureStore | None = None

    @property
    def marker_path(self) -> Path:
        return self.root / MARKER

    @property
    def store(self) -> FeatureStore:
        """Feast's own ``FeatureStore`` on this repository (built on first use)."""
        if self._store is None:
            (self.root / "data" / "sources").mkdir(parents=True, exist_ok=True)
            text = yaml.safe_dump(self.config.repo_yaml(), sort_keys=False)
            path = self.root / "feature_store.yaml"
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
            self._store = FeatureStore(repo_path=str(self.root))
        return self._store

    def apply(self) -> None:
        """Register the entities, feature views and the ranker's feature service."""
        self.store.apply(repo_objects())  # type: ignore[arg-type]

    def materialize(self, tables: FeatureTables) -> str:
        """Write the batch sources, materialize them into the online store, bump the version.

        Rows are stamped no earlier than 1 µs after the previous materialization, because
        Feast online stores keep the newest row per entity (Redis drops a write carrying the
        same instant as the stored one), so every materialization replaces the previous one.
        Returns the new version.
        """
        _check_columns(tables.items, "items", "item_id", ITEM_FEATURES)
        _check_columns(tables.users, "users", "user_id", USER_FEATURES)
        stamp = _as_utc(tables.items["event_timestamp"]).max()
        stamp = max(stamp, _as_utc(tables.users["event_timestamp"]).max())
        previous = self.marker()
        if previous is not None:
            floor = pd.Timestamp(previous["event_timestamp"]) + timedelta(microseconds=1)
            stamp = max(stamp, floor)
        store = self.store  # writes feature_store.yaml and creates data/sources
        frames = {"item_id": tables.items, "user_id": tables.users}
        for view, feats in {**ITEM_VIEWS, **USER_VIEWS}.items():
            key = VIEW_ENTITY[view]
            frame = frames[key][[key, *feats]].astype({f: "float32" for f in feats})
            frame.insert(1, "event_timestamp", stamp)
            frame.to_parquet(self.root / source_path(view), index=False)
        self.apply()
        with contextlib.redirect_stdout(sys.stderr):  # Feast prints progress on stdout
            store.materialize(
                start_date=(stamp - timedelta(seconds=1)).to_pydatetime(),
                end_date=(stamp + timedelta(seconds=1)).to_pydatetime(),
                feature_views=[*ITEM_VIEWS, *USER_VIEWS],
            )
        digest = hashlib.sha256()
        for frame in (tables.items, tables.users):
            hashed = pd.util.hash_pandas_object(frame.drop(columns="event_timestamp"))
            digest.update(hashed.to_numpy().tobytes())
        version = f"{stamp:%Y%m%dT%H%M%S%f}Z-{digest.hexdigest()[:10]}"
        marker = {
            "version": version,
            "event_timestamp": stamp.isoformat(),
            "materialized_at": datetime.now(UTC).isoformat(),
            "items": len(tables.items),
            "users": len(tables.users),
            "online_store": self.config.online_store,
        }
        tmp = self.marker_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(marker, indent=1))
        os.replace(tmp, self.marker_path)  # atomic: a reader sees the old or the new marker
        return version

    def marker(self) -> dict[str, Any] | None:
        """The last materialization's marker, or None before the first one."""
        try:
            return cast(dict[str, Any], json.loads(self.marker_path.read_text()))
        except FileNotFoundError:
            return None

    def online(self) -> OnlineFeatures:
        """An in-process cache over this repository's online store."""
        return OnlineFeatures(
            self.store,
            self.marker_path,
            item_keys_path=self.root / source_path(next(iter(ITEM_VIEWS))),
            check_interval_s=self.config.check_interval_s,
            user_cache_size=self.config.user_cache_size,
        )


def _as_utc(column: pd.Series) -> pd.Series:
    ts = pd.to_datetime(column)
    return ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")


def _check_columns(frame: pd.DataFrame, name: str, key: str, feats: tuple[str, ...]) -> None:
    missing = [c for c in (key, "event_timestamp", *feats) if c not in frame.columns]
    if missing:
        raise ValueError(
            f"FeatureTables.{name} lacks columns {missing}; expected {[key, 'event_timestamp']} "
            f"plus {list(feats)}"
        )
    if frame[key].duplicated().any():
        dup = frame.loc[frame[key].duplicated(), key].iloc[0]
        raise ValueError(f"FeatureTables.{name} has duplicate {key} values, e.g. {dup!r}")
