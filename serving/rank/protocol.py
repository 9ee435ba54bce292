"""Request and response of POST /v1/rank."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from serving.lists.protocol import FilterSpec, ListResponse

MAX_ITEMS = 1000
MAX_ID = 256  # the longest id accepted anywhere (user_id, item_id): unknown ids are echoed back


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not 5: the schema says

    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Shopper to rank for; null or unknown = no history (cold start).",
    )
    item_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID)]] = Field(
        min_length=1,
        max_length=MAX_ITEMS,
        description="Candidate item ids to rank, each 1 to 256 characters (repeats count once; "
        "unknown ids are reported in unknown_item_ids).",
    )
    k: int | None = Field(
        default=None, ge=1, le=MAX_ITEMS, description="Return the best k; null = all known items."
    )
    filters: FilterSpec | None = Field(
        default=None,
        description="Filters to apply to the given items; none given: every known item is "
        "ranked (stock and purchase rules off), only business rules apply.",
    )
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Caller's id for this request (decision log key); generated when absent.",
    )
    explain: bool = Field(
        default=False, description="Add each item's reasons and the decision log."
    )
    include_item: bool = Field(
        default=False,
        description="Add each item's title, price, category, brand and in_stock (and its "
        "attributes), so a front end needs no second call.",
    )
    trace: bool = Field(default=False, description="Add per-stage latencies in milliseconds.")


class RankResponse(ListResponse):
    user_id: str | None = Field(description="The shopper ranked for, as given.")
    cold_start: bool = Field(description="True when the shopper has no history.")
    ranker: str | None = Field(
        description="Ranker that ordered the items; null = fused retrieval order (no ranker)."
    )
    unknown_item_ids: list[str] = Field(
        description="Given ids that are not in the bundle's catalog (not ranked)."
    )
