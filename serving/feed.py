"""Acknowledged events to the Feast online store, off the request path.

``POST /v1/events`` commits to the durable log and answers; the :class:`FeatureFeed` then hands
the event to a background thread that pushes batches through :class:`features.push.EventPusher`
(Feast's ``write_to_online_store``) and drops those users from the ranker's online-feature
cache, so their next ranking reads the pushed row. A failed push is logged and counted; the
event is still in the log, and the feed replays the whole log when it starts, so the store
catches up.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from recsys.events import Event, EventLog

log = logging.getLogger(__name__)

_STOP = object()


class FeatureFeed:
    def __init__(
        self,
        pusher: Any,  # features.push.EventPusher: push(events)
        on_pushed: Callable[[Sequence[str]], None] = lambda users: None,
        batch: int = 500,
        wait_s: float = 0.05,
    ) -> None:
        self.pusher = pusher
        self.on_pushed = on_pushed
        self.batch = batch
        self.wait_s = wait_s
        self.pushed = 0
        self.failed = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._loop, name="feast-feed", daemon=True)

    def start(self, replay: EventLog | None = None) -> FeatureFeed:
        if replay is not None:  # the pusher is idempotent: replaying the log is safe
            for event in replay.events():
                self.submit(event)
        self._thread.start()
        return self

    def submit(self, event: Event) -> None:
        self._idle.clear()
        self._queue.put(event)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted so far was pushed (or failed); True if it was."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            events = [first]
            try:
                while len(events) < self.batch:
                    events.append(self._queue.get(timeout=self.wait_s))
            except queue.Empty:
                pass
            stop = any(e is _STOP for e in events)
            events = [e for e in events if e is not _STOP]
            try:
                frame = self.pusher.push(events)
                self.on_pushed(list(frame["user_id"]))
                self.pushed += len(events)
            except Exception:  # the log keeps the events; a restart replays them
                self.failed += len(events)
                log.exception("pushing %d events to the online store failed", len(events))
            if self._queue.empty():
                self._idle.set()
            if stop:
                return

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout=30)
