"""One scrape sees every worker: each worker publishes its values to a shared folder, and the
worker that answers ``/metrics`` renders the sum of all live workers' values.

prometheus_client's own multiprocess mode keys its files by metric name for the whole process
(and Feast switches it on at import), which this app's per-registry values avoid (see
:mod:`serving.metrics`); so the same idea is done here over those values. Each worker writes
``<folder>/<pid>.json`` at most every ``interval`` seconds from a background thread and on every
scrape it answers; files of processes that are gone are skipped (and removed). Counters and
histograms add up across workers; gauges (the served version, breaker states) take the
largest value, since every worker reports the same thing.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from serving.metric_values import _Family


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class SharedValues(Collector):
    """The families of ``families``, summed over every worker publishing to ``folder``."""

    def __init__(self, families: Sequence[_Family], folder: Path, interval: float = 1.0) -> None:
        self.families = families
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.interval = interval
        self.file = folder / f"{os.getpid()}.json"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="metrics-publish", daemon=True)
        self._thread.start()

    def snapshot(self) -> dict[str, Any]:
        out = {}
        for family in self.families:
            with family._lock:
                values = [[list(k), v] for k, v in family.values.items()]
                counts = [[list(k), list(v)] for k, v in family.counts.items()]
            out[family.name] = {"values": values, "counts": counts}
        return out

    def publish(self) -> None:
        staged = self.file.with_suffix(".tmp")
        staged.write_text(json.dumps(self.snapshot()))
        staged.replace(self.file)  # a reader sees the old file or the new one, never half

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.publish()
            except OSError:  # a full or read-only disk loses freshness, not the worker
                continue

    def _workers(self) -> list[dict[str, Any]]:
        found = []
        for path in self.folder.glob("*.json"):
            if path != self.file and not _alive(int(path.stem)):
                path.unlink(missing_ok=True)
                continue
            try:
                found.append(json.loads(path.read_text()))
            except (OSError, ValueError):  # being replaced right now: skip it this time
                continue
        return found

    def collect(self) -> Iterator[Metric]:
        self.publish()
        workers = self._workers()
        for family in self.families:
            merged = _Family(family.name, family.doc, family.labels, family.kind, family.buckets)
            for worker in workers:
                doc = worker.get(family.name, {})
                for labels, value in doc.get("values", []):
                    key = tuple(labels)
                    if family.kind == "gauge":
                        merged.values[key] = max(merged.values.get(key, value), value)
                    else:
                        merged.values[key] = merged.values.get(key, 0.0) + value
                for labels, counts in doc.get("counts", []):
                    key = tuple(labels)
                    have = merged.counts.setdefault(key, [0] * len(counts))
                    merged.counts[key] = [a + b for a, b in zip(have, counts, strict=True)]
            yield merged.metric()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.file.unlink(missing_ok=True)
