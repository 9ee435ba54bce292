"""Experiment arms: sticky assignment, traffic shares, shadow arms, ramp, promote, roll back.

An :class:`Experiment` has one control arm (the bundle served today) and candidate arms, each
a bundle and ranker with a traffic share. A shopper's arm follows from
``sha256(salt:user_id)``, a point in [0, 1) that never changes: candidate ``i`` of ``C`` owns
``[i / C, i / C + share)`` and the control the rest, so ramping a candidate up only adds
shoppers to it (nobody who saw it goes back) and every worker and restart agrees without
sharing anything but the experiment. A shadow arm is never shown: for its share of requests it
computes a list beside the shown one, and only the decision log sees it.

Experiments persist in SQLite (:class:`ExperimentStore`), one JSON document per experiment with
a revision number; workers re-read when the file's revision changes.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

Status = Literal["running", "promoted", "rolled_back"]
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ExperimentError(ValueError):
    """A request the experiments cannot take; ``param`` names the field at fault."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UnknownExperimentError(ExperimentError):
    pass


class ExperimentConflictError(ExperimentError):
    """The experiment's state does not allow this (already exists, already ended)."""


@dataclass(frozen=True)
class Arm:
    name: str
    bundle_path: str | None = None  # None: the bundle the server serves (the control's)
    ranker: str | None = None
    share: float = 0.0  # candidates and shadows; the control takes what candidates leave
    shadow: bool = False

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ExperimentError(
                f"arm name {self.name!r} must be 1-64 letters, digits, '_', '.' or '-'", "name"
            )
        if not 0.0 <= self.share <= 1.0:
            raise ExperimentError(f"share must be in [0, 1], got {self.share}", "share")


@dataclass(frozen=True)
class Experiment:
    name: str
    salt: str
    control: Arm
    candidates: tuple[Arm, ...]
    status: Status = "running"
    winner: str | None = None
    history: tuple[dict[str, Any], ...] = ()  # what changed, when, and why
    revision: int = 0

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ExperimentError(
                f"experiment name {self.name!r} must be 1-64 letters, digits, '_', '.' or '-'",
                "name",
            )
        names = [self.control.name, *(a.name for a in self.candidates)]
        if len(set(names)) != len(names):
            raise ExperimentError(f"arm names must differ, got {names}", "arms")
        live = [a for a in self.candidates if not a.shadow]
        cap = 1.0 / max(len(live), 1)
        over = [a.name for a in live if a.share > cap + 1e-12]
        if over:
            raise ExperimentError(
                f"arm(s) {over} ask for more than {cap:g} of traffic: with {len(live)} "
                f"candidates each may take at most 1/{len(live)}",
                "share",
            )

    @property
    def arms(self) -> tuple[Arm, ...]:
        return (self.control, *self.candidates)

    def arm(self, name: str) -> Arm:
        for a in self.arms:
            if a.name == name:
                return a
        raise ExperimentError(
            f"unknown arm {name!r} in experiment {self.name!r}; arms: "
            f"{[a.name for a in self.arms]}",
            "arm",
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Experiment:
        return cls(
            name=doc["name"],
            salt=doc["salt"],
            control=Arm(**doc["control"]),
            candidates=tuple(Arm(**a) for a in doc["candidates"]),
            status=doc["status"],
            winner=doc.get("winner"),
            history=tuple(doc.get("history", ())),
            revision=int(doc.get("revision", 0)),
        )


def bucket(salt: str, user_id: str) -> float:
    """The shopper's fixed point in [0, 1) for this experiment."""
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class Assignment:
    experiment: str
    arm: Arm  # the arm shown
    shadows: tuple[Arm, ...] = ()  # arms that compute a list for the log only


def assign(experiment: Experiment, user_id: str) -> Assignment:
    """The arm ``user_id`` sees (and the shadows that run beside it); after a promotion
    everyone sees the winner, after a rollback everyone sees the control."""
    if experiment.status == "promoted":
        return Assignment(experiment.name, experiment.arm(str(experiment.winner)))
    if experiment.status == "rolled_back":
        return Assignment(experiment.name, experiment.control)
    point = bucket(experiment.salt, user_id)
    live = [a for a in experiment.candidates if not a.shadow]
    shown = experiment.control
    for i, a in enumerate(live):
        start = i / len(live)
        if start <= point < start + a.share:
            shown = a
            break
    # a shadow's share is the requests it runs on, drawn with a salt of its own
    shadows = tuple(
        a
        for a in experiment.candidates
        if a.shadow and bucket(f"{experiment.salt}/{a.name}", user_id) < a.share
    )
    return Assignment(experiment.name, shown, shadows)


def _event(action: str, **details: Any) -> dict[str, Any]:
    return {"ts": round(time.time(), 3), "action": action, **details}


def ramp(experiment: Experiment, arm: str, share: float, reason: str = "") -> Experiment:
    _running(experiment, "ramp")
    target = experiment.arm(arm)
    if target is experiment.control:
        raise ExperimentError(
            "the control takes what the candidates leave; ramp a candidate", "arm"
        )
    candidates = tuple(
        replace(a, share=share) if a.name == arm else a for a in experiment.candidates
    )
    done = replace(experiment, candidates=candidates)
    return _log(done, "ramp", arm=arm, share=share, was=target.share, reason=reason)


def promote(experiment: Experiment, arm: str, reason: str = "") -> Experiment:
    _running(experiment, "promote")
    if experiment.arm(arm).shadow:
        raise ExperimentError(
            f"arm {arm!r} is a shadow (never shown); ramp a shown arm first", "arm"
        )
    return _log(
        replace(experiment, status="promoted", winner=arm), "promote", arm=arm, reason=reason
    )


def rollback(experiment: Experiment, reason: str = "") -> Experiment:
    _running(experiment, "roll back")
    return _log(replace(experiment, status="rolled_back"), "rollback", reason=reason)


def _running(experiment: Experiment, what: str) -> None:
    if experiment.status != "running":
        raise ExperimentConflictError(
            f"experiment {experiment.name!r} is {experiment.status}; only a running one can {what}",
            "name",
        )


def _log(experiment: Experiment, action: str, **details: Any) -> Experiment:
    return replace(experiment, history=(*experiment.history, _event(action, **details)))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    revision INTEGER NOT NULL
)
"""


@dataclass
class ExperimentStore:
    """Experiments in one SQLite file, shared by worker processes; reads are cached and
    refreshed when the file's total revision moves (one indexed read per ``refresh`` seconds)."""

    path: Path
    refresh: float = 1.0
    _cache: dict[str, Experiment] = field(default_factory=dict)
    _seen: int = -1
    _checked: float = 0.0

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            self._conn.execute(_SCHEMA)

    def all(self) -> dict[str, Experiment]:
        now = time.monotonic()
        with self._lock:
            if now - self._checked >= self.refresh or self._seen < 0:
                self._checked = now
                total = self._conn.execute(
                    "SELECT COALESCE(SUM(revision), 0) + COUNT(*) FROM experiments"
                ).fetchone()[0]
                if total != self._seen:
                    rows = self._conn.execute("SELECT doc FROM experiments").fetchall()
                    self._cache = {
                        e.name: e for e in (Experiment.from_dict(json.loads(r[0])) for r in rows)
                    }
                    self._seen = total
            return dict(self._cache)

    def get(self, name: str) -> Experiment:
        found = self.all().get(name)
        if found is None:
            raise UnknownExperimentError(
                f"unknown experiment {name!r}; experiments: {sorted(self.all())}", "name"
            )
        return found

    def create(self, experiment: Experiment) -> Experiment:
        """Store a new experiment; one runs at a time, so a second is refused until the first
        is promoted or rolled back."""
        experiment = _log(replace(experiment, revision=1), "create")
        with self._write() as conn:
            for (doc,) in conn.execute("SELECT doc FROM experiments").fetchall():
                other = json.loads(doc)
                if other["name"] == experiment.name:
                    raise ExperimentConflictError(
                        f"experiment {experiment.name!r} exists already", "name"
                    )
                if other["status"] == "running":
                    raise ExperimentConflictError(
                        f"experiment {other['name']!r} is running; promote or roll it back "
                        "before starting another",
                        "name",
                    )
            conn.execute(
                "INSERT INTO experiments VALUES (?, ?, 1)",
                (experiment.name, json.dumps(experiment.as_dict())),
            )
        return experiment

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")  # serialises writers across processes
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            finally:
                self._seen = -1

    def update(self, name: str, change: Any) -> Experiment:
        """Apply ``change(experiment) -> experiment`` to the stored one, atomically."""
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM experiments WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UnknownExperimentError(f"unknown experiment {name!r}", "name")
            current = Experiment.from_dict(json.loads(row[0]))
            done = replace(change(current), revision=current.revision + 1)
            conn.execute(
                "UPDATE experiments SET doc = ?, revision = ? WHERE name = ?",
                (json.dumps(done.as_dict()), done.revision, name),
            )
        return done

    def active(self) -> Experiment | None:
        """The running experiment (at most one runs at a time), else the latest promoted one."""
        found = self.all().values()
        running = [e for e in found if e.status == "running"]
        if running:
            return running[0]
        promoted = [e for e in found if e.status == "promoted"]
        return max(promoted, key=lambda e: e.history[-1]["ts"]) if promoted else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
