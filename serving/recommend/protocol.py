"""Request and response of POST /v1/recommend."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from serving.shared import ScoredItem


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str = Field(
        min_length=1,
        max_length=256,
        description="Shopper id. Unknown ids get the cold-start answer, not an error.",
    )
    k: int = Field(
        default=10,
        ge=1,
        le=500,
        description="How many items to return (at most the bundle's candidate count).",
    )
    explain: bool = Field(default=False, description="Add each item's reasons.")
    trace: bool = Field(default=False, description="Add per-stage latencies in milliseconds.")


class RecommendResponse(BaseModel):
    model_version: str = Field(description="Version of the artifact bundle that answered.")
    user_id: str = Field(description="The shopper the list is for, as given.")
    cold_start: bool = Field(
        description="True when the shopper has no history (unknown or new): popularity-led list."
    )
    ranker: str | None = Field(
        description="Ranker that ordered the list; null = merged retrieval order (no ranker)."
    )
    items: list[ScoredItem] = Field(description="Recommended items, best first.")
    trace: dict[str, float] | None = Field(
        default=None, description="{stage: milliseconds} (trace=true only)."
    )
