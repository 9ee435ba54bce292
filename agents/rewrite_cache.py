"""Query rewrites shared by every worker: Redis when configured, a SQLite file otherwise.

A rewrite is keyed by the bundle version and the normalized query, so a new bundle (new catalog,
new vocabulary) never serves an old bundle's rewrite, and "Running shoes?" and "running  shoes"
share one entry. What is stored is the *validated* rewrite, so a hit costs one lookup: no model,
no encoder, no validation.

Two stores are read, in this order:

- the bundle's own ``rewrites.sqlite``, written offline by ``recsys rewrite-cache`` for the
  dataset's frequent long-tail queries (read only when serving);
- the shared store (``RECSYS_REWRITE_CACHE_*``), filled as the served model answers.

A store that fails (Redis down, a locked file) reads as a miss and is logged once: a cache may
make a search faster, never fail it.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.prices import normalize
from agents.rewrite import Rewrite

log = logging.getLogger(__name__)

BUNDLE_FILE = "rewrites.sqlite"  # inside the bundle folder: the precomputed rewrites
STORES = ("auto", "redis", "sqlite", "off")
_WORD = re.compile(r"[\w$£€']+(?:[.,]\d+)*")  # words, amounts ("1,000", "12.50"), "mum's"


def query_key(query: str) -> str:
    """The form a query is cached under: one spelling, its words and amounts, no punctuation
    ("Tea-loving aunt?" and "tea loving aunt" are one entry)."""
    return " ".join(_WORD.findall(normalize(query)))


class RewriteCacheSettings(BaseSettings):
    """``RECSYS_REWRITE_CACHE_*``: where served rewrites are shared between workers."""

    model_config = SettingsConfigDict(env_prefix="RECSYS_REWRITE_CACHE_", extra="ignore")

    store: Literal["auto", "redis", "sqlite", "off"] = Field(
        default="auto",
        description="auto: Redis when the feature store is configured for Redis "
        "(RECSYS_FEATURES_ONLINE_STORE=redis, at RECSYS_FEATURES_REDIS_URL) or redis_url is "
        "set, else the SQLite file; off: no shared cache.",
    )
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db; None: the feature store's Redis."
    )
    sqlite_path: Path = Field(
        default=Path("var/serving/rewrites.sqlite"), description="The SQLite store's file."
    )
    ttl_s: int = Field(default=7 * 86_400, ge=60, description="How long a Redis entry lives.")
    precomputed: bool = Field(
        default=True, description="Read the bundle's precomputed rewrites (false: measure without)."
    )


def redis_url_from_feast(connection: str) -> str:
    """Feast's ``host:port[,password=...,ssl=true,db=N]`` as a ``redis://`` URL."""
    if connection.startswith(("redis://", "rediss://")):
        return connection
    address, *options = [p.strip() for p in connection.split(",") if p.strip()]
    opts = dict(o.split("=", 1) for o in options if "=" in o)
    scheme = "rediss" if opts.get("ssl", "").lower() == "true" else "redis"
    auth = f":{opts['password']}@" if opts.get("password") else ""
    return f"{scheme}://{auth}{address}/{opts.get('db', '0')}"


def to_doc(rewrite: Rewrite) -> str:
    return json.dumps(asdict(rewrite))


def from_doc(doc: str, source: Literal["cache", "precomputed"]) -> Rewrite | None:
    """The stored rewrite, marked with where it came from; None for an unreadable entry."""
    try:
        raw: dict[str, Any] = json.loads(doc)
        raw["keywords"] = tuple(raw.get("keywords") or ())
        raw["rejected"] = tuple(raw.get("rejected") or ())
        raw["attributes"] = tuple((k, tuple(v)) for k, v in raw.get("attributes") or ())
        raw["source"] = source
        return Rewrite(**raw)
    except (TypeError, ValueError):
        return None


class RewriteStore(Protocol):
    def get(self, version: str, key: str) -> str | None: ...

    def put(self, version: str, key: str, doc: str) -> None: ...


class SQLiteStore:
    """One table (version, query) -> rewrite; WAL, so worker processes share the file."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            uri = f"file:{self.path.resolve()}?mode=ro"
            self.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), check_same_thread=False,
                                      isolation_level=None, timeout=2.0)  # fmt: skip
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS rewrites (version TEXT, query TEXT, doc TEXT, "
                "stored REAL, PRIMARY KEY (version, query))"
            )
        self.lock = threading.Lock()

    def get(self, version: str, key: str) -> str | None:
        with self.lock:
            row = self.db.execute(
                "SELECT doc FROM rewrites WHERE version = ? AND query = ?", (version, key)
            ).fetchone()
        return str(row[0]) if row else None

    def put(self, version: str, key: str, doc: str) -> None:
        with self.lock:
            self.db.execute(
                "INSERT OR REPLACE INTO rewrites VALUES (?, ?, ?, ?)",
                (version, key, doc, time.time()),
            )

    def __len__(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT COUNT(*) FROM rewrites").fetchone()[0])


class RedisStore:
    def __init__(self, url: str, ttl_s: int) -> None:
        import redis

        self.r = redis.Redis.from_url(url, decode_responses=True, socket_timeout=0.2,
                                      socket_connect_timeout=0.2)  # fmt: skip
        self.ttl = ttl_s

    def get(self, version: str, key: str) -> str | None:
        doc = self.r.get(f"rewrite:{version}:{key}")
        return None if doc is None else str(doc)

    def put(self, version: str, key: str, doc: str) -> None:
        self.r.set(f"rewrite:{version}:{key}", doc, ex=self.ttl)


def open_store(
    settings: RewriteCacheSettings, feature_redis: str | None = None
) -> RewriteStore | None:
    """The shared store ``settings`` name; ``feature_redis`` is the feature store's Feast
    connection string when it is configured for Redis (what ``auto`` picks up)."""
    if settings.store == "off":
        return None
    url = settings.redis_url or (redis_url_from_feast(feature_redis) if feature_redis else None)
    if settings.store == "redis" or (settings.store == "auto" and url):
        if not url:
            raise ValueError(
                "RECSYS_REWRITE_CACHE_STORE=redis needs RECSYS_REWRITE_CACHE_REDIS_URL (or the "
                "feature store on Redis); valid stores are " + ", ".join(STORES)
            )
        return RedisStore(url, settings.ttl_s)
    return SQLiteStore(settings.sqlite_path)


class RewriteCache:
    """The precomputed rewrites of a bundle, then the shared store, for one bundle version."""

    def __init__(
        self, version: str, shared: RewriteStore | None, bundle_dir: Path | None = None
    ) -> None:
        self.version = version
        self.shared = shared
        file = bundle_dir / BUNDLE_FILE if bundle_dir is not None else None
        self.precomputed = SQLiteStore(file, readonly=True) if file and file.is_file() else None
        self._warned = False

    def get(self, query: str) -> Rewrite | None:
        key = query_key(query)
        stores: list[tuple[RewriteStore | None, Literal["cache", "precomputed"]]] = [
            (self.precomputed, "precomputed"), (self.shared, "cache"),
        ]  # fmt: skip
        for store, source in stores:
            doc = self._safely(lambda s=store: s.get(self.version, key)) if store else None
            if doc is not None:
                found = from_doc(doc, source)
                if found is not None:
                    return found
        return None

    def put(self, query: str, rewrite: Rewrite) -> None:
        shared = self.shared
        if shared is not None:
            doc = to_doc(rewrite)
            self._safely(lambda: shared.put(self.version, query_key(query), doc))

    def _safely(self, call: Any) -> Any:
        try:
            return call()
        except Exception as exc:  # redis.ConnectionError, sqlite3.OperationalError, ...
            if not self._warned:
                log.warning("rewrite cache unavailable, searching without it: %s", exc)
                self._warned = True
            return None
