"""Request and response of POST /v1/search."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from serving.shared import FilterSpec, ListResponse


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not 5: the schema says

    query: str = Field(
        min_length=1,
        max_length=512,
        description="What the shopper typed, e.g. 'waterproof hiking boots under 100'.",
    )
    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Shopper id, for their purchase filter and the decision log; optional.",
    )
    k: int = Field(default=10, ge=1, le=200, description="How many items to return.")
    filters: FilterSpec | None = Field(
        default=None, description="Caller filters (price, categories, brands, stock, ...)."
    )
    explore: bool = Field(
        default=True, description="Allow the configured exploration; false: the greedy list."
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
    trace: bool = Field(default=False, description="Add per-stage latencies in milliseconds.")


class SearchResponse(ListResponse):
    query: str = Field(description="The query, as given.")
    sources: list[str] = Field(
        description="Retrieval sources that answered: 'lexical' (BM25 over the catalog), "
        "'text' (the sentence encoder's index) where the bundle has one."
    )
    matched_terms: int = Field(
        description="How many query words the catalog vocabulary knows (0: nothing matched "
        "lexically, a long-tail signal)."
    )
