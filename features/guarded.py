"""Online feature reads behind a circuit breaker: a failing store degrades, it never fails.

:class:`GuardedFeatures` wraps :class:`features.online.OnlineFeatures` with the same reads. A read
that raises (Redis down, a table missing from SQLite, a timeout) or that the open breaker
refuses answers NaN rows instead: the "missing" value the rankers already score unknown users
and items with, so the ranker still orders the candidates, on neutral features. Each such answer
is noted in the caller's :func:`feature_reads` scope as ``features_unavailable``, which the API
reports in ``degraded``.

Only reads inside a :func:`feature_reads` scope (a request) degrade; outside one (training,
evaluation, a notebook) a failure raises. So does one inside ``feature_reads(strict=True)``:
the trial requests a new bundle answers before it is swapped in use it, so a bundle with a
broken store is refused rather than served degraded from its first request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from features.online import OnlineFeatures
from features.tables import ITEM_FEATURES, USER_FEATURES
from recsys.breaker import BreakerOpenError, CircuitBreaker

log = logging.getLogger(__name__)
FEATURES_UNAVAILABLE = "features_unavailable"
T = TypeVar("T")


@dataclass
class _Scope:
    strict: bool = False
    degraded: set[str] = field(default_factory=set)


_SCOPE: ContextVar[_Scope | None] = ContextVar("feature_reads", default=None)


@contextmanager
def feature_reads(strict: bool = False) -> Iterator[set[str]]:
    """A scope (one request) collecting what degraded; ``strict``: failures raise instead."""
    scope = _Scope(strict=strict)
    token = _SCOPE.set(scope)
    try:
        yield scope.degraded
    finally:
        _SCOPE.reset(token)


class GuardedFeatures:
    """``OnlineFeatures``' reads through ``breaker``, NaN rows when the store fails."""

    def __init__(self, inner: OnlineFeatures, breaker: CircuitBreaker) -> None:
        self.inner = inner
        self.breaker = breaker

    @classmethod
    def of(cls, inner: OnlineFeatures, failures: int, reset_s: float) -> GuardedFeatures:
        return cls(inner, CircuitBreaker("online_store", failures=failures, reset_s=reset_s))

    @property
    def store(self) -> object:
        return self.inner.store

    @property
    def version(self) -> str:
        return self._cached(lambda: self.inner.version, lambda: "")

    def align(self, item_ids: np.ndarray) -> None:
        self._cached(lambda: self.inner.align(item_ids), lambda: None)

    # Item reads come from the in-process matrix; only a new materialization makes them read
    # the store. They neither ask the breaker nor count as its successes (a request's item
    # read succeeding must not hide that its user read failed), but a failure counts.

    def items_at(self, idx: np.ndarray) -> np.ndarray:
        return self._cached(lambda: self.inner.items_at(idx), lambda: _nan(len(idx), ITEM_FEATURES))

    def items(self, item_ids: Sequence[str]) -> np.ndarray:
        return self._cached(
            lambda: self.inner.items(item_ids), lambda: _nan(len(item_ids), ITEM_FEATURES)
        )

    def users(self, user_ids: Sequence[str]) -> np.ndarray:
        """Rows not cached are read from the store: through the breaker."""
        return self._read(
            lambda: self.breaker.call(self.inner.users, user_ids),
            lambda: _nan(len(user_ids), USER_FEATURES),
            lambda: self.inner.users(user_ids),
        )

    def forget(self, user_ids: Sequence[str]) -> None:
        self.inner.forget(user_ids)

    def refresh(self) -> bool:
        return self._cached(self.inner.refresh, lambda: False)

    def _cached(self, read: Callable[[], T], neutral: Callable[[], T]) -> T:
        def counted() -> T:
            try:
                return read()
            except Exception as exc:
                self.breaker.failure(exc)
                raise

        return self._read(counted, neutral, read)

    def _read(
        self, guarded: Callable[[], T], neutral: Callable[[], T], plain: Callable[[], T]
    ) -> T:
        scope = _SCOPE.get()
        # Outside a scope (training, evaluation, a notebook) a failure is an error, as is one in
        # a trial, which tests the store itself whatever the breaker thinks.
        if scope is None or scope.strict:
            return plain()
        try:
            return guarded()
        except Exception as exc:
            scope.degraded.add(FEATURES_UNAVAILABLE)
            if not isinstance(exc, BreakerOpenError):  # refusals: one line per opening is enough
                log.warning("online features unavailable (%s): neutral features", exc)
            return neutral()


def _nan(rows: int, names: tuple[str, ...]) -> np.ndarray:
    return np.full((rows, len(names)), np.nan, dtype=np.float32)
