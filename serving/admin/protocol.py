"""Request and response of the /admin routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not 5: the schema says

    bundle_path: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Bundle directory to load; null = the configured bundle_path again.",
    )
    ranker: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Ranker of the new bundle to serve; null = the configured one or its default.",
    )
    wait: bool = Field(
        default=False,
        description="true: answer when the load has finished (200, or 422 when the bundle is "
        "refused); false: answer 202 at once and load in the background.",
    )


class ReloadStatus(BaseModel):
    state: Literal["idle", "loading", "loaded", "failed"] = Field(
        description="The latest reload's state."
    )
    bundle_path: str | None = Field(default=None, description="What the latest reload loads.")
    serving_version: str | None = Field(
        default=None, description="Version of the bundle serving requests now."
    )
    previous_version: str | None = Field(
        default=None, description="Version served before the latest successful swap."
    )
    error: str | None = Field(
        default=None, description="Why the latest reload was refused (the old bundle serves on)."
    )
    started_at: float | None = Field(default=None, description="Unix time the reload began.")
    finished_at: float | None = Field(default=None, description="Unix time it ended.")
