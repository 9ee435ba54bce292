"""The automatic rollback rule: a candidate arm whose error rate or p99 latency is worse than
the control's by more than a configured margin, over a sliding window, is rolled back.

Each arm keeps its recent requests (time, seconds, failed) in a window; :meth:`Guardrail.verdict`
compares every shown candidate with the control once both have ``min_requests`` in the window,
so a handful of slow first requests (model warm-up) cannot end an experiment.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class GuardrailRule:
    window_seconds: float = 300.0
    min_requests: int = 200  # per arm in the window before the rule may fire
    max_error_rate_increase: float = 0.02  # absolute: 0.02 = two points above the control
    max_p99_ratio: float = 1.5  # candidate p99 over control p99

    def __post_init__(self) -> None:
        if self.window_seconds <= 0 or self.min_requests < 1:
            raise ValueError(
                f"window_seconds must be > 0 and min_requests >= 1, got "
                f"{self.window_seconds} and {self.min_requests}"
            )
        if self.max_error_rate_increase < 0 or self.max_p99_ratio < 1:
            raise ValueError(
                f"max_error_rate_increase must be >= 0 and max_p99_ratio >= 1, got "
                f"{self.max_error_rate_increase} and {self.max_p99_ratio}"
            )


@dataclass(frozen=True)
class ArmStats:
    requests: int
    error_rate: float
    p99: float  # seconds


@dataclass
class Guardrail:
    rule: GuardrailRule = field(default_factory=GuardrailRule)
    _arms: dict[str, deque[tuple[float, float, bool]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, arm: str, seconds: float, failed: bool, now: float | None = None) -> None:
        at = time.monotonic() if now is None else now
        with self._lock:
            window = self._arms.setdefault(arm, deque())
            window.append((at, seconds, failed))
            self._trim(window, at)

    def _trim(self, window: deque[tuple[float, float, bool]], now: float) -> None:
        while window and window[0][0] < now - self.rule.window_seconds:
            window.popleft()

    def stats(self, arm: str, now: float | None = None) -> ArmStats | None:
        at = time.monotonic() if now is None else now
        with self._lock:
            window = self._arms.get(arm)
            if not window:
                return None
            self._trim(window, at)
            rows = np.array([(s, f) for _, s, f in window], dtype=float).reshape(-1, 2)
        if not len(rows):
            return None
        return ArmStats(len(rows), float(rows[:, 1].mean()), float(np.quantile(rows[:, 0], 0.99)))

    def verdict(self, control: str, candidate: str, now: float | None = None) -> str | None:
        """Why ``candidate`` must be rolled back, or None while it holds (or lacks data)."""
        base, cand = self.stats(control, now), self.stats(candidate, now)
        rule = self.rule
        if base is None or cand is None or min(base.requests, cand.requests) < rule.min_requests:
            return None
        if cand.error_rate > base.error_rate + rule.max_error_rate_increase:
            return (
                f"error rate {cand.error_rate:.3f} vs control {base.error_rate:.3f} "
                f"(allowed +{rule.max_error_rate_increase:g}) over {cand.requests} requests"
            )
        if base.p99 > 0 and cand.p99 > rule.max_p99_ratio * base.p99:
            return (
                f"p99 {cand.p99 * 1000:.1f} ms vs control {base.p99 * 1000:.1f} ms "
                f"(allowed x{rule.max_p99_ratio:g}) over {cand.requests} requests"
            )
        return None

    def reset(self) -> None:
        with self._lock:
            self._arms.clear()
