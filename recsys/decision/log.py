"""The decision log: one JSON line per list shown, for audits and off-policy evaluation.

Each record holds the request id, user, model version, every shown item with its slot, score and
propensity, and the removed items that outranked the last shown one, with why. Records are
queued and written by one background thread, so a request never waits on the disk; ``close``
flushes what is queued.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from recsys.decision.stage import Decision

_STOP = object()


def decision_record(
    decision: Decision,
    item_ids: np.ndarray,
    *,
    request_id: str,
    user_id: str,
    endpoint: str,
    model_version: str,
) -> dict[str, Any]:
    shown = [e for e in decision.entries if e.action == "shown"]
    floor = min((e.score for e in shown), default=float("inf"))
    return {
        "ts": round(time.time(), 3),
        "request_id": request_id,
        "endpoint": endpoint,
        "user_id": user_id,
        "model_version": model_version,
        "considered": decision.considered,
        "shown": [
            {
                "item_id": str(item_ids[e.item]),
                "position": e.position,
                "score": round(e.score, 6),
                "propensity": e.propensity,
                "reason": e.reason,
            }
            for e in shown
        ],
        "removed": [
            {"item_id": str(item_ids[e.item]), "score": round(e.score, 6), "reason": e.reason}
            for e in decision.entries
            if e.action == "removed" and e.score >= floor
        ],
    }


class DecisionLog:
    """Appends records to a JSON-lines file from a background thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=100_000)
        self.dropped = 0  # records not queued because the writer fell behind
        self._thread = threading.Thread(target=self._write, name="decision-log", daemon=True)
        self._thread.start()

    def append(self, record: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1  # never block a request on the audit trail

    def _write(self) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            while True:
                item = self._queue.get()
                batch = [item]
                while not self._queue.empty() and len(batch) < 1000:
                    batch.append(self._queue.get_nowait())
                stop = any(r is _STOP for r in batch)
                fh.writelines(json.dumps(r) + "\n" for r in batch if r is not _STOP)
                fh.flush()
                if stop:
                    return

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=10)
