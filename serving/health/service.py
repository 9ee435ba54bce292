"""Liveness, readiness, and the state of what the API depends on."""

from __future__ import annotations

from features.guarded import GuardedFeatures
from serving.errors import NotReadyError
from serving.health.protocol import HealthResponse, ReadyResponse
from serving.state import AppState, Served


def health() -> HealthResponse:
    return HealthResponse(status="ok")


def breakers(served: Served | None) -> dict[str, str]:
    """{breaker name: state} of the served bundle's dependencies."""
    ranking = served.bundle.ranking if served is not None else None
    features = ranking.features if ranking is not None else None
    if isinstance(features, GuardedFeatures):
        return {features.breaker.name: features.breaker.state}
    return {}


def readiness(state: AppState) -> ReadyResponse:
    """Ready when a bundle is served and the event log can write; 503 (NoBundleError,
    NotReadyError) naming why not otherwise. A degraded online store leaves the API ready: it
    answers, flagged, and ``dependencies`` says so."""
    served = state.require()
    events = state.events
    if events is not None and not events.writable():
        raise NotReadyError(f"the event log cannot write: {events.fault}")
    dependencies = breakers(served)
    if events is not None:
        dependencies["event_log"] = "ok"
    return ReadyResponse(
        status="ready",
        model_version=served.version,
        ranker=served.ranker,
        sources=served.bundle.retriever.names,
        loaded_at=served.loaded_at,
        dependencies=dependencies,
    )
