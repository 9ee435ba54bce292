"""What the chaos tests share: a steady in-process load and its record.

Every test here runs a fault under load and checks outcomes (no 5xx, what was flagged, what was
lost), never speeds: the phases end on counts of answers, and the deadlines are hang guards.
Each test prints one ``CHAOS {...}`` line with its figures (run with ``-s`` to see them).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

HANG_GUARD_S = 600.0


@dataclass(frozen=True)
class Answer:
    started: float
    ended: float
    status: int
    body: dict[str, Any]

    @property
    def degraded(self) -> list[str]:
        return list(self.body.get("degraded", []))


@dataclass
class Load:
    """``threads`` callers, each sending ``request(client, n)`` in a loop until stopped."""

    client: TestClient
    request: Callable[[TestClient, int], Any]
    threads: int = 2
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for w in range(self.threads):
            worker = threading.Thread(target=self._run, args=(w,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def _run(self, worker: int) -> None:
        n = worker
        while not self._stop.is_set():
            started = time.monotonic()
            r = self.request(self.client, n)
            body = (
                r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
            )
            with self._lock:
                self.answers.append(Answer(started, time.monotonic(), r.status_code, body))
            n += self.threads

    def since(self, t: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started >= t]

    def wait_for(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        while not done():
            assert time.monotonic() < deadline, f"hang guard: never {what}"
            assert all(w.is_alive() for w in self._workers), "a load thread died"
            time.sleep(0.01)

    def stop(self) -> list[Answer]:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=HANG_GUARD_S)
        return list(self.answers)


@pytest.fixture()
def load_of() -> Iterator[Callable[..., Load]]:
    loads: list[Load] = []

    def make(
        client: TestClient, request: Callable[[TestClient, int], Any], threads: int = 2
    ) -> Load:
        load = Load(client, request, threads).start()
        loads.append(load)
        return load

    yield make
    for load in loads:
        load.stop()


def report(name: str, **figures: Any) -> None:
    print(f"CHAOS {json.dumps({'test': name, **figures})}")
