"""Request and response of POST /v1/recommend."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from serving.lists.protocol import FilterSpec, ListResponse


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not 5: the schema says

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
    filters: FilterSpec | None = Field(
        default=None, description="Caller filters (price, categories, brands, stock, ...)."
    )
    explore: bool = Field(
        default=True,
        description="Allow the configured exploration; false returns the greedy list.",
    )
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Caller's id for this request (decision log key, exploration seed); "
        "generated when absent.",
    )
    llm_rerank: bool = Field(
        default=False,
        description="Rerank the top items with the LLM (blended with the ranker, with a short "
        "reason each); a slow or failing LLM leaves the order as it was, flagged.",
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


class RecommendResponse(ListResponse):
    user_id: str = Field(description="The shopper the list is for, as given.")
    cold_start: bool = Field(
        description="True when the shopper has no history (unknown or new): popularity-led list."
    )
    ranker: str | None = Field(
        description="Ranker that ordered the list; null = merged retrieval order (no ranker)."
    )
