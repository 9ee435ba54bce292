"""Request and response of POST /v1/search."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from serving.lists.protocol import FilterSpec, ListResponse


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
    rewrite: Literal["auto", "off", "force"] = Field(
        default="off",
        description="Query rewriting: the shopping agent's parser reads prices (applied as "
        "filters where the caller set none), brand and attributes from the words; auto also "
        "asks the LLM for catalog words when retrieval's confidence in the query is low "
        "(long-tail), answered from the shared cache or the bundle's precomputed rewrites when "
        "it can; force asks it for every query; off does neither. A slow or failing LLM never "
        "fails the search: the parser's reading stands and `degraded` says why.",
    )
    llm_rerank: bool = Field(
        default=False,
        description="Rerank the top results with the LLM (blended with the ranker, with a "
        "short reason each); a slow or failing LLM leaves the order as it was, flagged.",
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


class RewriteInfo(BaseModel):
    kind: Literal["head", "longtail"] = Field(description="How the query was classified.")
    used_llm: bool = Field(description="Whether the LLM was asked (auto skips head queries).")
    keywords: list[str] = Field(description="Validated keyword rewrites, searched and fused.")
    category: str | None = Field(description="Validated catalog category, searched and fused.")
    price_max: float | None = Field(description="Price cap stated in the query, applied.")
    price_source: Literal["llm", "text"] | None = Field(
        description="Who found the cap: the LLM (checked against the query's numbers), or the "
        "query's own budget phrase when the LLM missed it."
    )
    rejected: list[str] = Field(description="LLM output that validation threw away, and why.")
    price_min: float | None = Field(
        default=None, description="Price floor stated in the query ('over 50'), applied."
    )
    attributes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Attribute values the query asks for ({'colour': ['red']}), read by the "
        "shopping agent's parser; reported, not applied (the words already reach the search, "
        "and a hard filter drops items without the key): offer them as facets.",
    )
    brand: str | None = Field(
        default=None, description="Brand the query names; reported, not applied (as attributes)."
    )
    confidence: float | None = Field(
        default=None,
        description="Retrieval's confidence in the query as typed: the idf-weighted share of "
        "its words the best lexical match holds; below the threshold the query is long-tail.",
    )
    source: Literal["parser", "llm", "cache", "precomputed"] = Field(
        default="parser",
        description="Who answered: the parser alone (head queries), the LLM now, the shared "
        "cache, or the bundle's precomputed rewrites.",
    )


class SearchResponse(ListResponse):
    query: str = Field(description="The query, as given.")
    sources: list[str] = Field(
        description="Retrieval sources that answered: 'lexical' (BM25 over the catalog), "
        "'text' (the sentence encoder's index) where the bundle has one."
    )
    rewrite: RewriteInfo | None = Field(
        default=None, description="The query rewrite, when one was asked for and made."
    )
    matched_terms: int = Field(
        description="How many query words the catalog vocabulary knows (0: nothing matched "
        "lexically, a long-tail signal)."
    )
