"""Session memory of the shopping agent: the conversation, the shopper's stated constraints, the
items shown, and the full chain of every turn (thoughts, actions, observations, timings, tokens).

SQLite by default (one file, WAL, shared by worker processes); Redis by configuration
(``RECSYS_CHAT_MEMORY=redis://host:6379/0``), for several API replicas.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol


class SessionMemory(Protocol):
    def turns(self, session_id: str, last: int = 6) -> list[dict[str, str]]:
        """The latest ``last`` messages, oldest first ({"role", "content"})."""
        ...

    def add_turn(self, session_id: str, role: str, content: str) -> None: ...

    def state(self, session_id: str) -> dict[str, Any]:
        """{"constraints": {...}, "shown": [item ids]} ({} for a new session)."""
        ...

    def set_state(self, session_id: str, state: dict[str, Any]) -> None: ...

    def add_trace(self, session_id: str, record: dict[str, Any]) -> None: ...

    def trace(self, session_id: str) -> list[dict[str, Any]]: ...


class SQLiteMemory:
    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.lock = threading.Lock()
        with self.lock:
            self.db.executescript(
                """
                CREATE TABLE IF NOT EXISTS turns (
                    session_id TEXT, seq INTEGER PRIMARY KEY AUTOINCREMENT, role TEXT,
                    content TEXT);
                CREATE TABLE IF NOT EXISTS state (session_id TEXT PRIMARY KEY, doc TEXT);
                CREATE TABLE IF NOT EXISTS trace (
                    session_id TEXT, seq INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT);
                CREATE INDEX IF NOT EXISTS turns_by_session ON turns (session_id, seq);
                CREATE INDEX IF NOT EXISTS trace_by_session ON trace (session_id, seq);
                """
            )

    def turns(self, session_id: str, last: int = 6) -> list[dict[str, str]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT role, content FROM turns WHERE session_id = ? ORDER BY seq DESC LIMIT ?",
                (session_id, last),
            ).fetchall()
        return [{"role": r, "content": c} for r, c in reversed(rows)]

    def add_turn(self, session_id: str, role: str, content: str) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO turns (session_id, role, content) VALUES (?, ?, ?)",
                (session_id, role, content),
            )

    def state(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            row = self.db.execute(
                "SELECT doc FROM state WHERE session_id = ?", (session_id,)
            ).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def set_state(self, session_id: str, state: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO state (session_id, doc) VALUES (?, ?) "
                "ON CONFLICT(session_id) DO UPDATE SET doc = excluded.doc",
                (session_id, json.dumps(state)),
            )

    def add_trace(self, session_id: str, record: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO trace (session_id, doc) VALUES (?, ?)",
                (session_id, json.dumps(record, default=str)),
            )

    def trace(self, session_id: str) -> list[dict[str, Any]]:
        with self.lock:
            rows = self.db.execute(
                "SELECT doc FROM trace WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]


class RedisMemory:
    """The same memory in Redis: lists for turns and trace, a string for the state."""

    def __init__(self, url: str, ttl_s: int = 7 * 86_400) -> None:
        import redis

        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.ttl = ttl_s

    def _touch(self, *keys: str) -> None:
        for key in keys:
            self.r.expire(key, self.ttl)

    def turns(self, session_id: str, last: int = 6) -> list[dict[str, str]]:
        rows = self.r.lrange(f"chat:{session_id}:turns", -last, -1)
        return [json.loads(r) for r in rows]

    def add_turn(self, session_id: str, role: str, content: str) -> None:
        key = f"chat:{session_id}:turns"
        self.r.rpush(key, json.dumps({"role": role, "content": content}))
        self._touch(key)

    def state(self, session_id: str) -> dict[str, Any]:
        doc = self.r.get(f"chat:{session_id}:state")
        return dict(json.loads(doc)) if doc else {}

    def set_state(self, session_id: str, state: dict[str, Any]) -> None:
        self.r.set(f"chat:{session_id}:state", json.dumps(state), ex=self.ttl)

    def add_trace(self, session_id: str, record: dict[str, Any]) -> None:
        key = f"chat:{session_id}:trace"
        self.r.rpush(key, json.dumps(record, default=str))
        self._touch(key)

    def trace(self, session_id: str) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self.r.lrange(f"chat:{session_id}:trace", 0, -1)]


def open_memory(where: str) -> SessionMemory:
    """``redis://...`` -> :class:`RedisMemory`; anything else is a SQLite file path."""
    if where.startswith(("redis://", "rediss://")):
        return RedisMemory(where)
    return SQLiteMemory(where)
