"""Responses of GET /healthz and GET /readyz."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HealthResponse(BaseModel):
    status: str = Field(description="'ok' while the process answers.")


class ReadyResponse(BaseModel):
    status: str = Field(description="'ready' when a bundle is loaded and served.")
    model_version: str = Field(description="Version of the served artifact bundle.")
    ranker: str | None = Field(description="Ranker in use; null = merged retrieval order.")
    sources: list[str] = Field(description="Candidate sources of the served bundle.")
    loaded_at: float = Field(description="When the bundle was swapped in (Unix seconds).")
    dependencies: dict[str, str] = Field(
        default_factory=dict,
        description="Each dependency's state: online_store (its circuit breaker: closed, "
        "half_open, open; while not closed answers are degraded, features_unavailable) and "
        "event_log (ok; when it cannot write, /readyz is 503 instead).",
    )
