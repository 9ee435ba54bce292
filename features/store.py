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
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

import pandas as pd
import yaml
from feast import FeatureStore
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from features.definitions import ITEM_VIEWS, USER_VIEWS, VIEW_ENTITY, repo_objects, source_path
from features.online import OnlineFeatures
from features.tables import ITEM_FEATURES, USER_FEATURES, FeatureTables

TEMPLATE = Path(__file__).with_name("feature_store.yaml")
MARKER = "materialization.json"
ONLINE_STORES: tuple[str, ...] = ("sqlite", "redis")
ENV_PREFIX = "RECSYS_FEATURES_"
ENV_ONLINE_STORE = f"{ENV_PREFIX}ONLINE_STORE"
ENV_REDIS_URL = f"{ENV_PREFIX}REDIS_URL"
OnlineStoreKind = Literal["sqlite", "redis"]


class FeatureStoreSettings(BaseSettings):
    """Which online store Feast uses and how the in-process cache behaves, from
    ``RECSYS_FEATURES_*`` environment variables (the serving settings hold one as ``features``).

    ``redis_url`` is Feast's ``connection_string`` form (``host:port[,password=...,ssl=true]``).
    ``check_interval_s`` is how often the cache looks at the materialization marker (0: on
    every call, one ``stat``, calls within a millisecond sharing one); ``user_cache_size``
    bounds the users kept in process (the materialized rows are loaded when they fit).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    online_store: OnlineStoreKind = Field(
        default="sqlite", description=f"Feast online store, one of {list(ONLINE_STORES)}."
    )
    redis_url: str = Field(
        default="localhost:6379", description="Feast's connection_string for redis."
    )
    check_interval_s: float = Field(
        default=0.0,
        ge=0.0,
        description="Seconds between looks at the marker (0: every call; calls within 1 ms of "
        "a look share it).",
    )
    user_cache_size: int = Field(
        default=100_000,
        ge=0,
        description="Users kept in process: the materialized rows when there are no more "
        "than this, and as many read from the store (0: every read goes to the store).",
    )
    # A dead store must cost a request milliseconds, not redis-py's default of no timeout at all;
    # the breaker then stops asking it until breaker_reset_s has passed.
    redis_timeout_s: float = Field(
        default=0.25, gt=0.0, description="Redis connect and read timeout, seconds."
    )
    breaker_failures: int = Field(
        default=3, ge=1, description="Failed online-store reads in a row that open the breaker."
    )
    breaker_reset_s: float = Field(
        default=2.0, ge=0.0, description="Seconds the open breaker waits before one trial read."
    )

    @field_validator("online_store", mode="before")
    @classmethod
    def _known_store(cls, value: Any) -> Any:
        kind = str(value).strip().lower() or "sqlite"
        if kind not in ONLINE_STORES:
            raise ValueError(
                f"{ENV_ONLINE_STORE}={value!r} is not a known online store; "
                f"valid values are {list(ONLINE_STORES)}"
            )
        return kind

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value:
            raise ValueError(f"{ENV_REDIS_URL} is empty; expected Feast's 'host:port' form")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FeatureStoreSettings:
        """Read ``RECSYS_FEATURES_*`` from ``environ`` (default: the process environment); a
        bad value is one line naming the variable, the value and the valid ones."""
        try:
            if environ is None:
                return cls()
            # every field given: the mapping alone decides, not the process environment
            values = {
                name: environ.get(f"{ENV_PREFIX}{name.upper()}", info.default)
                for name, info in cls.model_fields.items()
            }
            return cls(**values)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = f"{ENV_PREFIX}{'.'.join(map(str, first['loc'])).upper()}"
            message = first["msg"].removeprefix("Value error, ")
            raise ValueError(
                message if message.startswith(where) else f"{where}={first['input']!r}: {message}"
            ) from None

    def repo_yaml(self) -> dict[str, Any]:
        """The runtime ``feature_store.yaml`` content: the template with the online store set."""
        with TEMPLATE.open() as f:
            raw: dict[str, Any] = yaml.safe_load(f)
        if self.online_store == "redis":
            raw["online_store"] = {"type": "redis", "connection_string": self._redis_connection()}
        return raw

    def _redis_connection(self) -> str:
        """``redis_url`` plus the timeouts, unless the URL sets its own. ``retry=null``: redis-py
        8 otherwise retries a refused connection three times with backoff (seconds per read
        while the server is down); the breaker decides when to try again instead."""
        options = {
            "socket_timeout": self.redis_timeout_s,
            "socket_connect_timeout": self.redis_timeout_s,
            "retry": "null",
        }
        given = {part.split("=", 1)[0].strip() for part in self.redis_url.split(",")}
        extra = [f"{k}={v}" for k, v in options.items() if k not in given]
        return ",".join([self.redis_url, *extra])


FeatureStoreConfig = FeatureStoreSettings  # the name existing callers import


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
            user_source_path=self.root / source_path(next(iter(USER_VIEWS))),
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
