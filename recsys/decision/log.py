"""The decision log: one JSON line per list shown, for audits and off-policy evaluation.

Each record holds the request id, user, model version, experiment arm, every shown item with
its slot, score, propensity and whether an exploration draw put it there, and the removed items
that outranked the last shown one, with why. Records are
queued and written by one background thread, so a request never waits on the disk; ``close``
flushes what is queued. The file rotates by size (``max_bytes``, ``backups`` older files kept).

The list endpoints queue a record's makings (:func:`deferred_record`) rather than the record:
the writer makes it with the others of its round, off the request's path. Measured with
``benchmarks/server_floor.py --layers service`` (200 requests/s, three alternating rounds):
server CPU 1.46-1.54 -> 1.38-1.50 ms per request, p50 2.10-2.25 -> 1.90-2.08 ms, p99 7.3-8.5 ->
6.3-6.6 ms.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from pydantic_core import to_json

from recsys.decision.stage import Decision

log = logging.getLogger(__name__)


def decision_record(
    decision: Decision,
    item_ids: np.ndarray,
    *,
    request_id: str,
    user_id: str,
    endpoint: str,
    model_version: str,
    arm: str | None = None,
    shadow: bool = False,
    contributions: Mapping[int, Sequence[Any]] | None = None,
    ts: float | None = None,
) -> dict[str, Any]:
    """One log line; ``explored`` marks the slots an exploration draw filled (the greedy policy
    would have shown something else there), which off-policy evaluation reads; ``shadow``
    marks a list an experiment arm computed but nobody was shown; ``ts``: when the list was
    decided (default now)."""
    shown = decision.shown
    floor = min((e.score for e in shown), default=float("inf"))
    return {
        "ts": round(time.time() if ts is None else ts, 3),
        "request_id": request_id,
        "endpoint": endpoint,
        "user_id": user_id,
        "model_version": model_version,
        "arm": arm,
        "shadow": shadow,
        "considered": decision.considered,
        "shown": [
            {
                "item_id": str(item_ids[e.item]),
                "position": e.position,
                "score": round(e.score, 6),
                "propensity": e.propensity,
                "explored": e.reason.startswith("exploration"),
                "reason": e.reason,
                **(
                    {"contributions": [asdict(c) for c in contributions[e.item]]}
                    if contributions and e.item in contributions
                    else {}
                ),
            }
            for e in shown
        ],
        "removed": [
            {"item_id": str(item_ids[e.item]), "score": round(e.score, 6), "reason": e.reason}
            for e in decision.removed.entries(at_least=floor)
        ],
    }


def deferred_record(
    decision: Decision, item_ids: np.ndarray, **fields: Any
) -> Callable[[], dict[str, Any]]:
    """:func:`decision_record` of these arguments, made when called (by the log's writer),
    stamped with the time of this call. ``decision`` must not change afterwards (none does:
    the decision stage and the LLM rerank make new ones)."""
    return partial(decision_record, decision, item_ids, ts=time.time(), **fields)


class DecisionLog:
    """Appends records to a JSON-lines file from a background thread.

    ``append`` is a deque append (no lock, no wake-up: a condition-variable queue cost more CPU
    per request than the decision itself); the writer drains every ``interval`` seconds.
    """

    def __init__(
        self,
        path: str | Path,
        interval: float = 0.2,
        max_pending: int = 100_000,
        max_bytes: int = 64 << 20,
        backups: int = 5,
    ) -> None:
        if max_bytes < 1 or backups < 1:
            raise ValueError(f"max_bytes={max_bytes}, backups={backups}: both must be at least 1")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.rotations = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.interval = interval
        self.max_pending = max_pending
        self.dropped = 0  # records not kept because the writer fell that far behind
        self.failed = 0  # deferred records whose making raised (logged)
        self._pending: deque[dict[str, Any] | Callable[[], dict[str, Any]]] = deque()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, name="decision-log", daemon=True)
        self._thread.start()

    def append(self, record: dict[str, Any] | Callable[[], dict[str, Any]]) -> None:
        """Queue ``record``, or what makes it (:func:`deferred_record`)."""
        if len(self._pending) >= self.max_pending:
            self.dropped += 1  # never block a request on the audit trail
            return
        self._pending.append(record)

    def _drain(self, fh: Any) -> None:
        lines = []
        while self._pending:
            record = self._pending.popleft()
            if callable(record):
                try:
                    record = record()
                except Exception:  # one bad record is lost, not the writer
                    self.failed += 1
                    log.exception("a deferred decision record failed; it is not logged")
                    continue
            # pydantic's Rust encoder: a quarter of json.dumps' CPU on a 15-item record, and
            # this thread shares the GIL with the requests
            lines.append(to_json(record).decode() + "\n")
        if lines:
            fh.writelines(lines)
            fh.flush()

    def _write(self) -> None:
        fh: TextIO = self.path.open("a", encoding="utf-8")
        try:
            while not self._stop.wait(self.interval):
                self._drain(fh)
                fh = self._rotated(fh)
            self._drain(fh)
        finally:
            fh.close()

    def _rotated(self, fh: TextIO) -> TextIO:
        """``fh``, or the file to write to now: past ``max_bytes`` the log moves to
        ``<path>.1`` (``.1`` to ``.2``, ..., the oldest beyond ``backups`` is deleted); when
        another worker rotated the shared file, this one follows it to the new file."""
        try:
            current = os.stat(self.path)
        except FileNotFoundError:  # another worker is rotating it right now
            fh.close()
            return self.path.open("a", encoding="utf-8")
        if current.st_ino != os.fstat(fh.fileno()).st_ino:
            fh.close()
            return self.path.open("a", encoding="utf-8")
        if current.st_size < self.max_bytes:
            return fh
        fh.close()
        for n in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        with contextlib.suppress(FileNotFoundError):  # another worker moved it first
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self.rotations += 1
        return self.path.open("a", encoding="utf-8")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
