"""Prometheus metrics of one app, in the app's own registry (two apps never collide).

Requests are counted and timed per route template (``/v1/items/{item_id}/similar``, not per
item), pipeline stages and candidate sources are timed from the pipeline trace, and cold-start
and fallback answers are counted by reason.

The values live in this module's own collector, not in ``prometheus_client.Counter`` and
friends: importing Feast (``feast/metrics.py``) sets ``PROMETHEUS_MULTIPROCESS_DIR`` for the
whole process, which switches every later-created client metric to shared per-process files
keyed by metric name, so two apps (or two registries) in one process would add into the same
values. Plain in-memory values keep each app's registry its own whatever was imported first.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.registry import Collector
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from recsys.breaker import STATE_VALUES
from recsys.retrieval.cache import CacheStats
from serving.metric_values import _AppCollector, _Family

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
COUNT_BUCKETS = (0, 1, 5, 10, 25, 50, 100, 250, 500, 1000)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class ServingMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.requests = _Family(
            "recsys_requests", "HTTP requests by route, method and status",
            ("endpoint", "method", "status"), "counter",
        )  # fmt: skip
        self.latency = _Family(
            "recsys_request_latency_seconds", "HTTP request latency by route",
            ("endpoint", "method"), "histogram", LATENCY_BUCKETS,
        )  # fmt: skip
        self.stage_latency = _Family(
            "recsys_stage_latency_seconds", "Pipeline stage latency, from the pipeline trace",
            ("endpoint", "stage"), "histogram", LATENCY_BUCKETS,
        )  # fmt: skip
        self.source_latency = _Family(
            "recsys_source_latency_seconds", "Candidate source latency inside retrieval",
            ("source",), "histogram", LATENCY_BUCKETS,
        )  # fmt: skip
        self.candidates = _Family(
            "recsys_candidates", "Candidates per request (before the top k is cut)",
            ("endpoint",), "histogram", COUNT_BUCKETS,
        )  # fmt: skip
        self.batch_size = _Family(
            "recsys_batch_size", "List requests run together in one pipeline batch "
            "(serving.batching; 1 = alone)", (), "histogram", BATCH_BUCKETS,
        )  # fmt: skip
        self.fallbacks = _Family(
            "recsys_fallbacks", "Answers that took a fallback path (cold_start, no_ranker)",
            ("endpoint", "reason"), "counter",
        )  # fmt: skip
        self.events = _Family(
            "recsys_events", "Events logged by POST /v1/events, by type and outcome "
            "(applied, duplicate)", ("event", "outcome"), "counter",
        )  # fmt: skip
        self.bundle = _Family(
            "recsys_bundle_info", "The served bundle version (value 1)", ("version",), "gauge"
        )
        self.breaker = _Family(
            "recsys_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open "
            "(requests degraded)", ("breaker",), "gauge",
        )  # fmt: skip
        self.decisions_dropped = _Family(
            "recsys_decision_log_dropped", "Decision-log records dropped because the writer "
            "fell behind (DecisionLog.dropped)", (), "gauge",
        )  # fmt: skip
        self.request_cache = _Family(
            "recsys_request_cache", "The recommend pipeline's caches in this worker (candidates: "
            "merged candidates by history; ranked: rankings by history, candidates, user features "
            "and materialization): hits and misses since the bundle was served, entries, size",
            ("cache", "stat"), "gauge",
        )  # fmt: skip
        self.registry = CollectorRegistry()
        # this process's CPU, memory, open files, and the collector's passes per generation
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.families: list[_Family] = [
            self.requests, self.latency, self.stage_latency, self.source_latency,
            self.candidates, self.batch_size, self.fallbacks, self.events, self.bundle,
            self.breaker, self.decisions_dropped, self.request_cache,
        ]  # fmt: skip
        self._collector: Collector = _AppCollector(self.families)
        self.registry.register(self._collector)

    def add(self, *families: _Family) -> None:
        """More families in this app's metrics (the LLM layer's, the experiments')."""
        self.families.extend(families)

    def share(self, folder: Path, interval: float = 1.0) -> None:
        """Render every worker's values summed: workers publish to ``folder`` (see
        :mod:`serving.metrics_shared`)."""
        from serving.metrics_shared import SharedValues

        self.registry.unregister(self._collector)
        self._collector = SharedValues(self.families, folder, interval)
        self.registry.register(self._collector)

    def close(self) -> None:
        close = getattr(self._collector, "close", None)
        if close is not None:
            close()

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.inc((endpoint, method, str(status)))
        self.latency.observe((endpoint, method), seconds)

    def observe_pipeline(
        self,
        endpoint: str,
        trace: Iterable[tuple[str, float]],
        source_ms: Mapping[str, float] | None = None,
        candidates: int | None = None,
    ) -> None:
        self.stage_latency.observe_many([((endpoint, stage), ms / 1000.0) for stage, ms in trace])
        if source_ms:
            self.source_latency.observe_many(
                [((source,), ms / 1000.0) for source, ms in source_ms.items()]
            )
        if candidates is not None:
            self.candidates.observe((endpoint,), float(candidates))

    def batch(self, size: int) -> None:
        self.batch_size.observe((), float(size))

    def fallback(self, endpoint: str, reason: str) -> None:
        self.fallbacks.inc((endpoint, reason))

    def event(self, event: str, duplicate: bool) -> None:
        self.events.inc((event, "duplicate" if duplicate else "applied"))

    def bundle_loaded(self, version: str) -> None:
        self.bundle.clear()
        self.bundle.set((version,), 1.0)

    def decision_log(self, dropped: int) -> None:
        self.decisions_dropped.set((), float(dropped))

    def breakers(self, states: Mapping[str, str]) -> None:
        self.breaker.clear()
        for name, state in states.items():
            self.breaker.set((name,), float(STATE_VALUES[state]))

    def caches(self, caches: Mapping[str, CacheStats]) -> None:
        self.request_cache.clear()
        for cache, stats in caches.items():
            for name in ("hits", "misses", "entries", "size"):
                self.request_cache.set((cache, name), float(getattr(stats, name)))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception that escapes every handler ends as a 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route") or _plain_route(scope)
            endpoint = str(getattr(route, "path", "unmatched"))
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(endpoint, scope["method"], status, elapsed)


def _plain_route(scope: Scope) -> Any:
    """The Starlette route (not a FastAPI one, which sets ``scope["route"]``) that matches, such
    as /openapi.json; None for a path no route serves (a 404: ``unmatched``)."""
    app = scope.get("app")
    for route in getattr(app, "routes", ()):
        if isinstance(route, Route) and route.matches(scope)[0] == Match.FULL:
            return route
    return None
