"""Live events: a durable event log, per-user session state, and the history stage that reads both.

- :class:`EventLog` is an append-only SQLite table (WAL, ``synchronous=FULL``), idempotent by
  ``event_id``. :meth:`EventLog.append` returns only after the row is committed, so an
  acknowledged event survives a restart; the same ``event_id`` again is a duplicate (``False``,
  not applied twice), and the same id with a different body is an :class:`EventConflictError`.
- :class:`SessionState` holds, per user, the items touched since the bundle's training snapshot,
  as item indexes of that bundle. It is rebuilt from the whole log on start
  (:meth:`SessionState.replay`) and catches up with the log (:meth:`SessionState.sync`) on
  every new event and before every history read, so several processes on one log (uvicorn
  workers) all see an event on the next request. A sync reads the log (one indexed SQLite read)
  only when the log's change stamp (:mod:`recsys.stamp`, set by every append) moved since its
  last read, or ``RESYNC_S`` has passed: most requests find nothing new and make no query.
- :class:`LiveHistoryStage` is :class:`recsys.retrieval.retriever.HistoryStage` plus the session:
  the bundle history, then the session's items that are not in it yet. This is the distinct-item
  form of :func:`recsys.data.sequences.encode` (one step per item, ordered by first interaction,
  ties in arrival order), so the sequence models see the new item, and every source's history
  exclusion keeps already-touched items (purchases included) out of the candidates.

Unknown items are rejected (:class:`UnknownEventItemError`) before anything is written, never
silently dropped. Replaying a log over a bundle whose catalog lost an item skips that item's
events and counts them (``SessionState.skipped``): they were valid when accepted.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recsys.data.contract import EVENTS
from recsys.data.sequences import Sequences
from recsys.stamp import ChangeStamp

MAX_EVENT_ID = 128
DEFAULT_EVENTS_PATH = Path("var/serving/events.sqlite")  # RECSYS_EVENTS_PATH's default
MAX_TS = 253_402_300_799  # 9999-12-31T23:59:59Z: far below SQLite's int64, and a real date
# a sync reads the log at least this often even when the change stamp says nothing is new:
# for a writer that died between its commit and the stamp, or one that does not set it
RESYNC_S = 1.0


class EventError(ValueError):
    """An event that cannot be accepted; ``param`` names the field at fault."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class InvalidEventError(EventError):
    """A malformed event (bad type, empty or too long id)."""


class UnknownEventItemError(EventError):
    def __init__(self, item_id: str) -> None:
        super().__init__(
            f"unknown item id {item_id!r}: not in the served bundle's catalog; events for "
            "unknown items are rejected",
            "item_id",
        )
        self.item_id = item_id


class EventConflictError(EventError):
    def __init__(self, event_id: str, fields: Sequence[str]) -> None:
        super().__init__(
            f"event_id {event_id!r} was already recorded with a different {', '.join(fields)}; "
            "an event id names one event",
            "event_id",
        )
        self.event_id = event_id


class EventStoreError(RuntimeError):
    """The log cannot write now (disk full, read-only, an I/O error): nothing was recorded, and
    the same event may be sent again later (``retry_after_s``)."""

    retry_after_s = 5


@dataclass(frozen=True)
class Event:
    """One shopper event. ``ts`` (unix seconds) None = when the log receives it."""

    event_id: str
    user_id: str
    item_id: str
    event: str
    ts: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= len(self.event_id) <= MAX_EVENT_ID:
            raise InvalidEventError(
                f"event_id must be 1 to {MAX_EVENT_ID} characters, got {len(self.event_id)}",
                "event_id",
            )
        if self.ts is not None and not 0 <= self.ts <= MAX_TS:
            raise InvalidEventError(f"ts must be 0 to {MAX_TS} unix seconds, got {self.ts}", "ts")
        if self.event not in EVENTS:
            raise InvalidEventError(
                f"unknown event {self.event!r}; valid events are {list(EVENTS)}", "event"
            )

    def at(self, received_at: float) -> Event:
        """This event with ``ts`` filled in (the receive time, in whole seconds, when unset)."""
        return self if self.ts is not None else replace(self, ts=int(received_at))

    def conflicts(self, stored: Event) -> list[str]:
        """Fields in which this event differs from ``stored`` (same id); ts only when given."""
        names = ["user_id", "item_id", "event"] + (["ts"] if self.ts is not None else [])
        return [n for n in names if getattr(self, n) != getattr(stored, n)]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    event TEXT NOT NULL,
    ts INTEGER NOT NULL,
    received_at REAL NOT NULL
)
"""
_COLUMNS = "event_id, user_id, item_id, event, ts"
_PROBE = "CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, at REAL NOT NULL)"


class EventLog:
    """Append-only, idempotent event log in one SQLite file (safe to share between threads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.fault: str | None = None  # why the last write failed, until one succeeds
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: each INSERT is its own transaction, committed when execute() returns.
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")  # a commit survives power loss too
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute(_SCHEMA)
            self._conn.execute(_PROBE)  # written once here: proves the file takes writes
            self._conn.execute("INSERT OR REPLACE INTO probe VALUES (1, ?)", (time.time(),))
        except (OSError, sqlite3.DatabaseError) as exc:
            raise EventStoreError(
                f"the event log {self.path} cannot be opened for writing ({exc})"
            ) from exc
        # every process on this log sets it to the rowid it has just committed
        self.stamp = ChangeStamp(self.path.with_name(self.path.name + "-stamp"))

    def append(self, event: Event, received_at: float | None = None) -> bool:
        """Record ``event``; True once committed, False for a duplicate of a recorded one.

        Raises :class:`EventConflictError` when ``event_id`` was recorded with another body.
        """
        received = time.time() if received_at is None else received_at
        row = event.at(received)
        with self._lock:
            try:
                cursor = self._conn.execute(
                    f"INSERT INTO events ({_COLUMNS}, received_at) VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(event_id) DO NOTHING",
                    (row.event_id, row.user_id, row.item_id, row.event, row.ts, received),
                )
            except sqlite3.DatabaseError as exc:  # SQLITE_FULL, _READONLY, _IOERR: the disk
                raise self._fault(exc) from exc
            self.fault = None
            if cursor.rowcount == 1:
                self.stamp.set(int(cursor.lastrowid or 0))  # committed: readers may look
                return True
            stored = self._get(event.event_id)
        if stored is None:  # pragma: no cover - rows are never deleted
            raise RuntimeError(f"event {event.event_id!r} neither inserted nor found")
        differs = event.conflicts(stored)
        if differs:
            raise EventConflictError(event.event_id, differs)
        return False

    def _fault(self, exc: sqlite3.DatabaseError) -> EventStoreError:
        self.fault = f"{self.path}: {exc}"
        return EventStoreError(
            f"the event log {self.path} cannot write ({exc}); the event was not recorded: "
            f"send it again in {EventStoreError.retry_after_s} s"
        )

    def writable(self) -> bool:
        """Whether the log can write: after a failed append, a real write decides (one row of
        its own table rewritten) and clears the fault when it succeeds."""
        if self.fault is None:
            return True
        with self._lock:
            try:
                self._conn.execute(_PROBE)
                self._conn.execute("INSERT OR REPLACE INTO probe VALUES (1, ?)", (time.time(),))
            except sqlite3.DatabaseError as exc:
                self.fault = f"{self.path}: {exc}"
                return False
            self.fault = None
        return True

    def get(self, event_id: str) -> Event | None:
        with self._lock:
            return self._get(event_id)

    def _get(self, event_id: str) -> Event | None:
        found = self._conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return None if found is None else Event(*found)

    def events(self) -> Iterator[Event]:
        """Every recorded event, by ts, then in the order they were received."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_COLUMNS} FROM events ORDER BY ts, rowid"
            ).fetchall()
        for found in rows:
            yield Event(*found)

    def since(self, position: int) -> list[tuple[int, Event]]:
        """(position, event) of every event received after ``position`` (0 = all), in order.

        Positions are the table's rowids: they grow with every event, in any process that
        writes the same file.
        """
        with self._lock:
            rows = self._conn.execute(
                f"SELECT rowid, {_COLUMNS} FROM events WHERE rowid > ? ORDER BY rowid",
                (position,),
            ).fetchall()
        return [(int(found[0]), Event(*found[1:])) for found in rows]

    def last_position(self) -> int:
        """The position of the newest event (0 for an empty log)."""
        with self._lock:
            return int(
                self._conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self.stamp.close()


class _HasItems(Protocol):
    item_ids: np.ndarray


@dataclass
class SessionState:
    """Per user, the items their events touched, as item indexes, by first interaction."""

    item_index: dict[str, int]  # item id -> index in the bundle
    skipped: int = 0  # replayed events whose item the catalog no longer has
    position: int = 0  # the last log position applied by sync()
    _seen: int | None = field(default=None, repr=False)  # the log's stamp at the last read
    _synced_at: float = field(default=float("-inf"), repr=False)
    _first: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict, repr=False)
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _purchased: dict[str, set[int]] = field(default_factory=dict, repr=False)
    _arrivals: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def for_bundle(cls, bundle: _HasItems) -> SessionState:
        return cls({str(item): i for i, item in enumerate(bundle.item_ids)})

    @classmethod
    def replay(cls, log: EventLog, bundle: _HasItems) -> SessionState:
        """The session state of ``bundle`` after every event in ``log``."""
        state = cls.for_bundle(bundle)
        state.sync(log)
        return state

    def sync(self, log: EventLog) -> int:
        """Apply the events ``log`` received since the last sync; returns how many were new.

        Other processes writing the same log (uvicorn workers) are picked up here too. Events
        whose item this catalog lacks are counted in ``skipped``: they were valid when logged.
        Applying in log order gives the same state as applying each event as it arrived.
        """
        seen = log.stamp.read()  # before the read: a change made during it shows next time
        now = time.monotonic()
        if seen is not None and seen == self._seen and now - self._synced_at < RESYNC_S:
            return 0
        with self._lock:
            rows = log.since(self.position)
            for position, event in rows:
                self.position = position
                index = self.item_index.get(event.item_id)
                if index is None:
                    self.skipped += 1
                else:
                    self._apply(index, event)
            self._seen, self._synced_at = seen, now
        return len(rows)

    def item(self, item_id: str) -> int:
        """The item's index; :class:`UnknownEventItemError` when the catalog lacks it."""
        index = self.item_index.get(item_id)
        if index is None:
            raise UnknownEventItemError(item_id)
        return index

    def apply(self, event: Event) -> None:
        """Add a recorded event (its ts set); an item keeps its earliest interaction."""
        if event.ts is None:
            raise ValueError(f"event {event.event_id!r} has no ts: apply recorded events")
        index = self.item(event.item_id)
        with self._lock:
            self._apply(index, event)

    def _apply(self, index: int, event: Event) -> None:
        assert event.ts is not None
        self._arrivals += 1
        key = (event.ts, self._arrivals)
        if event.event == "purchase":
            self._purchased.setdefault(event.user_id, set()).add(index)
        seen = self._first.setdefault(event.user_id, {})
        if index not in seen or key < seen[index]:
            seen[index] = key
            self._cache.pop(event.user_id, None)

    def items(self, user_id: str) -> np.ndarray:
        """(n,) int32 item indexes of ``user_id``'s events, in order of first interaction."""
        with self._lock:
            cached = self._cache.get(user_id)
            if cached is None:
                seen = self._first.get(user_id, {})
                ordered = sorted(seen, key=seen.__getitem__)
                cached = self._cache[user_id] = np.asarray(ordered, dtype=np.int32)
            return cached

    def purchased(self, user_id: str) -> set[int]:
        """Item indexes ``user_id`` bought through events (excluded from their lists)."""
        with self._lock:
            return set(self._purchased.get(user_id, ()))

    @property
    def users(self) -> list[str]:
        with self._lock:
            return list(self._first)


@dataclass
class LiveHistoryStage:
    """The bundle history, then the session's items not in it yet; unknown users stay cold only
    while they have no events. Same reads and writes as ``HistoryStage``."""

    user_index: Mapping[str, int]
    sequences: Sequences
    session: SessionState
    log: EventLog | None = None  # synced before every read: sees other processes' events
    name: str = "history"
    reads: tuple[str, ...] = ("user_id",)
    writes: tuple[str, ...] = ("history", "cold_start")

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        user_id = str(state["user_id"])
        if self.log is not None:
            self.session.sync(self.log)
        row = self.user_index.get(user_id)
        base = self.sequences.user(row) if row is not None else np.zeros(0, dtype=np.int32)
        new = self.session.items(user_id)
        if len(new):
            new = new[~np.isin(new, base)]
            base = np.concatenate([base, new]).astype(np.int32, copy=False)
        return {"history": base, "cold_start": len(base) == 0}
