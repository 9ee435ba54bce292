"""Where /v1/events stores an event's request_id, position and value: the attribution table in
the event log's own SQLite file (one connection per file, per process). Listeners (the arms'
per-arm click and value series) hear of every attributed event."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from recsys.events import EventLog
from recsys.experiments.attribution import Attribution, AttributionLog


class AttributedEvent(Protocol):
    """What an event says about the list it came from (serving.events.protocol.EventRequest)."""

    @property
    def event_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def event(self) -> str: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def position(self) -> int | None: ...
    @property
    def value(self) -> float | None: ...


Listener = Callable[[AttributedEvent], None]
_logs: dict[Path, AttributionLog] = {}
_listeners: dict[Path, list[Listener]] = {}
_lock = threading.Lock()


def attribution_log(events: EventLog) -> AttributionLog:
    key = events.path.resolve()
    with _lock:
        log = _logs.get(key)
        if log is None:
            log = _logs[key] = AttributionLog(key)
        return log


def listen(events: EventLog, listener: Listener) -> Callable[[], None]:
    """Call ``listener`` with every attributed event logged to ``events``; returns the undo."""
    key = events.path.resolve()
    with _lock:
        _listeners.setdefault(key, []).append(listener)

    def stop() -> None:
        with _lock:
            if listener in _listeners.get(key, []):
                _listeners[key].remove(listener)

    return stop


def attribute(events: EventLog | None, request: AttributedEvent) -> None:
    """Record what the event says about the list it came from (nothing when it names none)."""
    if events is None or request.request_id is None:
        return
    fresh = attribution_log(events).record(
        Attribution(request.event_id, request.request_id, request.position, request.value)
    )
    if not fresh:
        return  # a repeated event counts once
    with _lock:
        listeners = list(_listeners.get(events.path.resolve(), ()))
    for listener in listeners:
        listener(request)
