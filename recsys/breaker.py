"""A circuit breaker for calls to a dependency that can fail or hang (an online store, an LLM).

Closed: calls go through; ``failures`` failures in a row open it. Open: calls are refused at once
(:class:`BreakerOpenError`) for ``reset_s`` seconds, so a dead dependency costs no time per
request. Half-open: after ``reset_s`` one trial call goes through (others are still refused while
it runs); its success closes the breaker, its failure opens it for another ``reset_s``.

Why not ``pybreaker``: it keeps time with ``datetime.now`` (no clock to inject, so its tests
would depend on sleeping), and its half-open state lets every concurrent caller through. This
class is small, thread-safe, and takes the clock as an argument. It bounds nothing by itself:
callers give their dependency short timeouts (a Redis socket timeout, an HTTP deadline), and a
timeout is a failure like any other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal, TypeVar

T = TypeVar("T")
State = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[str, int] = {"closed": 0, "half_open": 1, "open": 2}  # the metric's values


class BreakerOpenError(RuntimeError):
    """Refused without calling: the breaker is open (or half-open with its trial in flight)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"circuit breaker {name!r} is open after: {reason}")
        self.name = name
        self.reason = reason


class CircuitBreaker:
    """See the module doc. ``on_change(name, old, new)`` is called on every state change."""

    def __init__(
        self,
        name: str,
        failures: int = 3,
        reset_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, State, State], None] | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError(f"failures must be at least 1, got {failures}")
        if reset_s < 0:
            raise ValueError(f"reset_s must be 0 or more seconds, got {reset_s}")
        self.name = name
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failed = 0  # failures in a row
        self._opened_at = 0.0
        self._trial = False  # a half-open trial call is in flight
        self.last_error = ""

    @property
    def state(self) -> State:
        with self._lock:
            return self._current()

    def _current(self) -> State:
        if self._state == "open" and self._clock() - self._opened_at >= self.reset_s:
            self._move("half_open")
        return self._state

    def _move(self, new: State) -> None:
        old, self._state = self._state, new
        if old != new and self._on_change is not None:
            self._on_change(self.name, old, new)

    def allow(self) -> bool:
        """True when a call may go through now (in half-open, the caller becomes the trial)."""
        with self._lock:
            state = self._current()
            if state == "closed":
                return True
            if state == "half_open" and not self._trial:
                self._trial = True
                return True
            return False

    def success(self) -> None:
        with self._lock:
            self._failed, self._trial = 0, False
            self._move("closed")

    def failure(self, error: BaseException | str) -> None:
        with self._lock:
            self.last_error = (
                error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            )
            self._failed += 1
            if self._state == "half_open" or self._failed >= self.failures:
                self._opened_at, self._trial = self._clock(), False
                self._move("open")

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` through the breaker; :class:`BreakerOpenError` when refused."""
        if not self.allow():
            raise BreakerOpenError(self.name, self.last_error)
        try:
            out = fn(*args)
        except BaseException as exc:  # a trial must never stay in flight
            self.failure(exc)
            raise
        self.success()
        return out
