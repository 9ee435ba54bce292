"""Liveness and readiness."""

from __future__ import annotations

from serving.health.protocol import HealthResponse, ReadyResponse
from serving.state import AppState


def health() -> HealthResponse:
    return HealthResponse(status="ok")


def readiness(state: AppState) -> ReadyResponse:
    """Ready when a bundle is served; raises NoBundleError (503) naming why not otherwise."""
    served = state.require()
    return ReadyResponse(
        status="ready",
        model_version=served.version,
        ranker=served.ranker,
        sources=served.bundle.retriever.names,
        loaded_at=served.loaded_at,
    )
