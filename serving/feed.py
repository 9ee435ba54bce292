"""Logged events to the Feast online store, off the request path.

``POST /v1/events`` commits to the durable log and answers. The :class:`FeatureFeed` tails that
log from a background thread (woken by each acknowledged event, and every ``interval`` seconds
for events other worker processes logged) and pushes them in batches through
:class:`features.push.EventPusher` (Feast's ``write_to_online_store``), then drops those users
from the ranker's online-feature cache so their next ranking reads the pushed row.

Every worker tails the whole log, so every worker's pusher knows every event: the pusher
recomputes a user's row from the snapshot plus all of the user's events (idempotent), so
workers writing the same user converge on the same row instead of overwriting each other's
events. A failed push is logged and counted and retried from the same log position.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from recsys.events import EventLog, UnknownEventItemError

log = logging.getLogger(__name__)


class FeatureFeed:
    def __init__(
        self,
        pusher: Any,  # features.push.EventPusher: push(events)
        events: EventLog,
        on_pushed: Callable[[Sequence[str]], None] = lambda users: None,
        batch: int = 500,
        interval: float = 0.5,
    ) -> None:
        self.pusher = pusher
        self.events = events
        self.on_pushed = on_pushed
        self.batch = batch
        self.interval = interval
        self.position = 0  # the last log position pushed
        self.pushed = 0
        self.failed = 0
        self.skipped = 0  # events whose item this bundle's feature repository lacks
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="feast-feed", daemon=True)

    def start(self) -> FeatureFeed:
        self._thread.start()  # its first pass pushes the whole log (the pusher is idempotent)
        return self

    def notify(self) -> None:
        """An event was logged: push it soon rather than at the next interval."""
        self._wake.set()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything logged so far was pushed; True if it was."""
        target = self.events.last_position()
        with self._idle:
            return self._idle.wait_for(lambda: self.position >= target, timeout)

    def step(self) -> int:
        """Push what the log holds past ``position``; the number of events pushed."""
        rows = self.events.since(self.position)[: self.batch]
        if not rows:
            return 0
        events = [event for _, event in rows]
        try:
            while True:
                try:
                    frame = self.pusher.push(events)
                    break
                except UnknownEventItemError as exc:  # logged for an older catalog: skip it
                    kept = [e for e in events if e.item_id != exc.item_id]
                    self.skipped += len(events) - len(kept)
                    events = kept
                    if not events:
                        frame = {"user_id": []}
                        break
        except Exception:  # the log keeps the events: the next pass retries them
            self.failed += len(rows)
            log.exception("pushing %d events to the online store failed", len(rows))
            return 0
        self.on_pushed(list(frame["user_id"]))
        with self._idle:
            self.position = rows[-1][0]
            self.pushed += len(rows)
            self._idle.notify_all()
        return len(rows)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.step() >= self.batch:
                continue  # more waiting: no pause
            self._wake.wait(self.interval)
            self._wake.clear()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
