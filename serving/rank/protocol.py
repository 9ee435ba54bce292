"""Request and response of POST /v1/rank."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from serving.shared import ScoredItem

MAX_ITEMS = 1000


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Shopper to rank for; null or unknown = no history (cold start).",
    )
    item_ids: list[str] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description="Candidate item ids to rank (repeats count once; unknown ids are reported "
        "in unknown_item_ids).",
    )
    k: int | None = Field(
        default=None, ge=1, le=MAX_ITEMS, description="Return the best k; null = all known items."
    )
    explain: bool = Field(default=False, description="Add each item's reasons.")
    trace: bool = Field(default=False, description="Add per-stage latencies in milliseconds.")


class RankResponse(BaseModel):
    model_version: str = Field(description="Version of the artifact bundle that answered.")
    user_id: str | None = Field(description="The shopper ranked for, as given.")
    cold_start: bool = Field(description="True when the shopper has no history.")
    ranker: str | None = Field(
        description="Ranker that ordered the items; null = fused retrieval order (no ranker)."
    )
    items: list[ScoredItem] = Field(description="The known given items, best first.")
    unknown_item_ids: list[str] = Field(
        description="Given ids that are not in the bundle's catalog (not ranked)."
    )
    trace: dict[str, float] | None = Field(
        default=None, description="{stage: milliseconds} (trace=true only)."
    )
