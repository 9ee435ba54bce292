"""Session memory of the shopping agent: the conversation, the shopper's stated constraints, the
items shown, and the full chain of every turn (thoughts, actions, observations, timings, tokens).

SQLite by default (one file, WAL, shared by worker processes); Redis by configuration
(``RECSYS_CHAT_MEMORY=redis://host:6379/0``), for several API replicas. Both forget a session
untouched for a week and keep at most ``MAX_SESSIONS``, the least recently used going first.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
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


TTL_S = 7 * 86_400  # a session untouched this long is forgotten (both backends)
MAX_SESSIONS = 100_000  # SQLite: the least recently used beyond this are forgotten
_TABLES = ("turns", "state", "trace", "sessions")


class SQLiteMemory:
    """Bounded: each write stamps its session; sessions untouched for ``ttl_s`` read as new and
    are deleted, and beyond ``max_sessions`` the least recently touched go first. Pruning runs
    on writes, at most once per ``prune_every`` writes, so a turn costs no table scan."""

    def __init__(
        self,
        path: str | Path,
        ttl_s: float = TTL_S,
        max_sessions: int = MAX_SESSIONS,
        clock: Callable[[], float] = time.time,
        prune_every: int = 100,
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.lock = threading.Lock()
        self.ttl_s, self.max_sessions, self.clock = ttl_s, max_sessions, clock
        self.prune_every = prune_every
        self._writes = 0
        with self.lock:
            self.db.executescript(
                """
                CREATE TABLE IF NOT EXISTS turns (
                    session_id TEXT, seq INTEGER PRIMARY KEY AUTOINCREMENT, role TEXT,
                    content TEXT);
                CREATE TABLE IF NOT EXISTS state (session_id TEXT PRIMARY KEY, doc TEXT);
                CREATE TABLE IF NOT EXISTS trace (
                    session_id TEXT, seq INTEGER PRIMARY KEY AUTOINCREMENT, doc TEXT);
                CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY, touched REAL);
                CREATE INDEX IF NOT EXISTS turns_by_session ON turns (session_id, seq);
                CREATE INDEX IF NOT EXISTS trace_by_session ON trace (session_id, seq);
                CREATE INDEX IF NOT EXISTS sessions_by_age ON sessions (touched);
                """
            )

    def _live(self, session_id: str) -> bool:
        """Whether the session was touched within the TTL (called under the lock)."""
        row = self.db.execute(
            "SELECT touched FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return row is None or row[0] >= self.clock() - self.ttl_s  # None: older than stamps

    def _wrote(self, session_id: str) -> None:
        """Stamp the session and, every ``prune_every`` writes, forget what is over the bounds
        (called under the lock)."""
        if not self._live(session_id):
            self._forget([session_id])
        self.db.execute(
            "INSERT INTO sessions (session_id, touched) VALUES (?, ?) "
            "ON CONFLICT(session_id) DO UPDATE SET touched = excluded.touched",
            (session_id, self.clock()),
        )
        self._writes += 1
        if self._writes % self.prune_every == 0:
            self.prune()

    def prune(self) -> int:
        """Forget expired sessions and the oldest beyond the cap; returns how many went."""
        old = self.db.execute(
            "SELECT session_id FROM sessions WHERE touched < ?", (self.clock() - self.ttl_s,)
        ).fetchall()
        over = self.db.execute(
            "SELECT session_id FROM sessions ORDER BY touched DESC LIMIT -1 OFFSET ?",
            (self.max_sessions,),
        ).fetchall()
        gone = list(dict.fromkeys(r[0] for r in [*old, *over]))
        self._forget(gone)
        return len(gone)

    def _forget(self, session_ids: list[str]) -> None:
        for table in _TABLES:
            self.db.executemany(
                f"DELETE FROM {table} WHERE session_id = ?", [(s,) for s in session_ids]
            )

    def sessions(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])

    def turns(self, session_id: str, last: int = 6) -> list[dict[str, str]]:
        with self.lock:
            if not self._live(session_id):
                return []
            rows = self.db.execute(
                "SELECT role, content FROM turns WHERE session_id = ? ORDER BY seq DESC LIMIT ?",
                (session_id, last),
            ).fetchall()
        return [{"role": r, "content": c} for r, c in reversed(rows)]

    def add_turn(self, session_id: str, role: str, content: str) -> None:
        with self.lock:
            self._wrote(session_id)
            self.db.execute(
                "INSERT INTO turns (session_id, role, content) VALUES (?, ?, ?)",
                (session_id, role, content),
            )

    def state(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            if not self._live(session_id):
                return {}
            row = self.db.execute(
                "SELECT doc FROM state WHERE session_id = ?", (session_id,)
            ).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def set_state(self, session_id: str, state: dict[str, Any]) -> None:
        with self.lock:
            self._wrote(session_id)
            self.db.execute(
                "INSERT INTO state (session_id, doc) VALUES (?, ?) "
                "ON CONFLICT(session_id) DO UPDATE SET doc = excluded.doc",
                (session_id, json.dumps(state)),
            )

    def add_trace(self, session_id: str, record: dict[str, Any]) -> None:
        with self.lock:
            self._wrote(session_id)
            self.db.execute(
                "INSERT INTO trace (session_id, doc) VALUES (?, ?)",
                (session_id, json.dumps(record, default=str)),
            )

    def trace(self, session_id: str) -> list[dict[str, Any]]:
        with self.lock:
            if not self._live(session_id):
                return []
            rows = self.db.execute(
                "SELECT doc FROM trace WHERE session_id = ? ORDER BY seq", (session_id,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]


class RedisMemory:
    """The same memory in Redis: lists for turns and trace, a string for the state. Bounded
    like :class:`SQLiteMemory`: keys expire ``ttl_s`` after their last write, a sorted set of
    sessions by last write lets the least recently used beyond ``max_sessions`` be deleted
    (checked every ``prune_every`` writes), and a session's trace keeps its last
    ``max_trace`` records."""

    SESSIONS = "chat:sessions"

    def __init__(
        self,
        url: str,
        ttl_s: int = TTL_S,
        max_sessions: int = MAX_SESSIONS,
        prune_every: int = 100,
        max_trace: int = 2_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import redis

        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.ttl, self.max_sessions, self.max_trace = ttl_s, max_sessions, max_trace
        self.prune_every, self.clock = prune_every, clock
        self._writes = 0

    def _wrote(self, session_id: str, *keys: str) -> None:
        pipe = self.r.pipeline()
        for key in keys:
            pipe.expire(key, self.ttl)
        pipe.zadd(self.SESSIONS, {session_id: self.clock()})
        pipe.execute()
        self._writes += 1
        if self._writes % self.prune_every == 0:
            self.prune()

    def prune(self) -> int:
        """Forget expired sessions and the oldest beyond the cap; returns how many went."""
        old = [str(s) for s in self.r.zrangebyscore(self.SESSIONS, "-inf",
                                                     self.clock() - self.ttl)]  # fmt: skip
        excess = int(self.r.zcard(self.SESSIONS)) - len(old) - self.max_sessions
        if excess > 0:
            more = self.r.zrange(self.SESSIONS, len(old), len(old) + excess - 1)
            old += [str(s) for s in more]
        if old:
            pipe = self.r.pipeline()
            for sid in old:
                pipe.delete(*(f"chat:{sid}:{part}" for part in ("turns", "state", "trace")))
            pipe.zrem(self.SESSIONS, *old)
            pipe.execute()
        return len(old)

    def sessions(self) -> int:
        return int(self.r.zcard(self.SESSIONS))

    def turns(self, session_id: str, last: int = 6) -> list[dict[str, str]]:
        rows = self.r.lrange(f"chat:{session_id}:turns", -last, -1)
        return [json.loads(r) for r in rows]

    def add_turn(self, session_id: str, role: str, content: str) -> None:
        key = f"chat:{session_id}:turns"
        self.r.rpush(key, json.dumps({"role": role, "content": content}))
        self.r.ltrim(key, -self.max_trace, -1)
        self._wrote(session_id, key)

    def state(self, session_id: str) -> dict[str, Any]:
        doc = self.r.get(f"chat:{session_id}:state")
        return dict(json.loads(doc)) if doc else {}

    def set_state(self, session_id: str, state: dict[str, Any]) -> None:
        self.r.set(f"chat:{session_id}:state", json.dumps(state), ex=self.ttl)
        self._wrote(session_id)

    def add_trace(self, session_id: str, record: dict[str, Any]) -> None:
        key = f"chat:{session_id}:trace"
        self.r.rpush(key, json.dumps(record, default=str))
        self.r.ltrim(key, -self.max_trace, -1)
        self._wrote(session_id, key)

    def trace(self, session_id: str) -> list[dict[str, Any]]:
        return [json.loads(r) for r in self.r.lrange(f"chat:{session_id}:trace", 0, -1)]


def open_memory(where: str) -> SessionMemory:
    """``redis://...`` -> :class:`RedisMemory`; anything else is a SQLite file path."""
    if where.startswith(("redis://", "rediss://")):
        return RedisMemory(where)
    return SQLiteMemory(where)
