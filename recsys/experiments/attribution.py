"""Attribution: which list an event came from, and the join of decisions with their outcomes.

An event may name the ``request_id`` of the list it was taken from, the ``position`` (0-based
slot) it was shown at and an order ``value``. These live in a side table of the event log's own
SQLite file (``event_attribution``, keyed by ``event_id``), so ``recsys ope --events`` reads one
file and the event log's schema stays as it is.

:func:`join_outcomes` turns a decision log and an event log into one row per shown slot with
its outcome (clicked, converted, value): what off-policy evaluation and per-arm reports read.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# Any engagement after being shown counts as a click; a purchase is a conversion.
CLICK_EVENTS = ("click", "cart", "purchase")
CONVERSION_EVENTS = ("purchase",)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS event_attribution (
    event_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    position INTEGER,
    value REAL
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS event_attribution_request ON event_attribution (request_id)"


@dataclass(frozen=True)
class Attribution:
    event_id: str
    request_id: str
    position: int | None = None
    value: float | None = None

    def __post_init__(self) -> None:
        if self.position is not None and self.position < 0:
            raise ValueError(f"position must be >= 0 (a 0-based slot), got {self.position}")
        if self.value is not None and not (np.isfinite(self.value) and self.value >= 0):
            raise ValueError(f"value must be a finite amount >= 0, got {self.value}")


class AttributionLog:
    """The ``event_attribution`` table in an event log's SQLite file (shared by processes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute(_SCHEMA)
            self._conn.execute(_INDEX)

    def record(self, attribution: Attribution) -> bool:
        """Store it; False when this event already had one (the first one stands, as the event
        log keeps the first body of an event id)."""
        a = attribution
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO event_attribution VALUES (?, ?, ?, ?) "
                "ON CONFLICT(event_id) DO NOTHING",
                (a.event_id, a.request_id, a.position, a.value),
            )
        return cursor.rowcount == 1

    def get(self, event_id: str) -> Attribution | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT event_id, request_id, position, value FROM event_attribution "
                "WHERE event_id = ?",
                (event_id,),
            ).fetchone()
        return None if row is None else Attribution(*row)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def read_decisions(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a JSON-lines decision log; a torn last line (a crash mid-write) is skipped."""
    with Path(path).open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                if fh.readline():  # not the last line: the log is damaged, say where
                    raise ValueError(f"{path}: line {n} is not JSON") from None


EVENT_COLUMNS = ("event_id", "user_id", "item_id", "event", "ts", "request_id", "position", "value")


def read_events(path: str | Path) -> pd.DataFrame:
    """Events with their attribution: a SQLite event log (``recsys.events.EventLog`` plus its
    ``event_attribution`` table), a JSON-lines file or a parquet file with
    :data:`EVENT_COLUMNS` (the attribution columns may be missing or null)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"event log {path} not found")
    suffix = path.suffix.lower()
    if suffix in (".sqlite", ".sqlite3", ".db"):
        frame = _read_sqlite(path)
    elif suffix in (".jsonl", ".json"):
        frame = pd.read_json(path, lines=True, dtype=False)
    elif suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        raise ValueError(
            f"unknown event log format {path.suffix!r} ({path}); valid: .sqlite, .db, .jsonl, "
            ".parquet"
        )
    missing = [c for c in ("user_id", "item_id", "event") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the event column(s) {missing}")
    for column in EVENT_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    return frame[list(EVENT_COLUMNS)]


def _read_sqlite(path: Path) -> pd.DataFrame:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "events" not in tables:
            raise ValueError(f"{path} has no events table (not an event log)")
        if "event_attribution" in tables:
            query = (
                "SELECT e.event_id, e.user_id, e.item_id, e.event, e.ts, a.request_id, "
                "a.position, a.value FROM events e LEFT JOIN event_attribution a "
                "ON a.event_id = e.event_id ORDER BY e.rowid"
            )
        else:
            query = "SELECT event_id, user_id, item_id, event, ts FROM events ORDER BY rowid"
        return pd.read_sql_query(query, conn)


def decisions_frame(records: Iterable[dict[str, Any]], shadow: bool = False) -> pd.DataFrame:
    """One row per shown slot of every decision record; ``shadow`` True: of the shadow arms'
    records instead (lists computed beside a shown one, under its request id, never shown)."""
    records = (r for r in records if bool(r.get("shadow", False)) == shadow)
    rows = [
        (
            r["request_id"],
            r.get("ts"),
            str(r["user_id"]),
            r.get("endpoint"),
            r.get("arm") or "default",
            r.get("model_version"),
            int(s["position"]),
            str(s["item_id"]),
            float(s["propensity"]),
            bool(s.get("explored", str(s.get("reason", "")).startswith("exploration"))),
            float(s.get("score", np.nan)),
        )
        for r in records
        for s in r.get("shown", ())
    ]
    columns = [
        "request_id",
        "ts",
        "user_id",
        "endpoint",
        "arm",
        "model_version",
        "position",
        "item_id",
        "propensity",
        "explored",
        "score",
    ]
    return pd.DataFrame(rows, columns=columns)


def join_outcomes(
    decisions: pd.DataFrame | Iterable[dict[str, Any]], events: pd.DataFrame
) -> pd.DataFrame:
    """Every shown slot with its outcome: ``click`` (any click, cart or purchase of that item
    attributed to that request), ``conversion`` (a purchase) and ``value`` (their order value).

    An event joins a slot by ``request_id`` and ``item_id``; when it names a ``position`` too,
    that must match the slot (an item shown twice in one list is attributed to the slot named).
    Events without a request id are not attributed: no guess about which list caused them.
    """
    shown = decisions if isinstance(decisions, pd.DataFrame) else decisions_frame(decisions)
    ev = events[events["request_id"].notna() & events["event"].isin(CLICK_EVENTS)].copy()
    ev["click"] = 1
    ev["conversion"] = ev["event"].isin(CONVERSION_EVENTS).astype(int)
    ev["value"] = np.where(ev["conversion"] == 1, pd.to_numeric(ev["value"]).fillna(0.0), 0.0)
    ev["item_id"] = ev["item_id"].astype(str)
    # an event without a position joins the item's first slot in that list
    slots = shown[["request_id", "item_id", "position"]].drop_duplicates(["request_id", "item_id"])
    ev = ev.merge(slots, on=["request_id", "item_id"], how="inner", suffixes=("", "_shown"))
    ev["position"] = pd.to_numeric(ev["position"]).fillna(ev["position_shown"]).astype(int)
    per_slot = ev.groupby(["request_id", "item_id", "position"], as_index=False).agg(
        click=("click", "max"), conversion=("conversion", "max"), value=("value", "sum")
    )
    out = shown.merge(per_slot, on=["request_id", "item_id", "position"], how="left")
    out[["click", "conversion"]] = out[["click", "conversion"]].fillna(0).astype(int)
    out["value"] = out["value"].fillna(0.0).astype(float)
    return out
