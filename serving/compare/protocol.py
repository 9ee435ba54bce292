"""Request and response of POST /v1/compare."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CompareRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not 5: the schema says

    item_ids: list[str] | None = Field(
        default=None,
        min_length=2,
        max_length=5,
        description="Items to compare (2 to 5). Give this or `category`.",
    )
    category: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A category path for buying guidance ('how do I choose a ...'). Give this "
        "or `item_ids`.",
    )
    question: str = Field(
        default="", max_length=500, description="The shopper's question, as data for the LLM."
    )
    stream: bool = Field(
        default=False,
        description="Answer as server-sent events (also when the Accept header asks for "
        "text/event-stream): `facts` at once (the catalog's table), then `claims` (the "
        "checked claims, when the model answers within the deadline), then `done` (what "
        "degraded). false: one JSON document once the claims are in or the deadline passed.",
    )
    deadline_s: float | None = Field(
        default=None,
        gt=0,
        le=120,
        description="How long the claims may take; null: the server's "
        "(RECSYS_COMPARE_DEADLINE_S, 2.5 s). Past it the answer is the facts, flagged "
        "llm_timeout.",
    )

    @model_validator(mode="after")
    def one_subject(self) -> CompareRequest:
        if (self.item_ids is None) == (self.category is None):
            raise ValueError("give exactly one of item_ids (compare) or category (guidance)")
        return self


class ClaimOut(BaseModel):
    item_id: str | None = Field(description="The item the claim is about (comparisons).")
    attribute: str = Field(description="The catalog attribute it rests on.")
    value: str = Field(description="The value the claim states.")
    text: str = Field(description="The claim or advice, as the model worded it.")
    citation: str = Field(description="[item_id.attribute] or [category.attribute].")


class FlaggedOut(BaseModel):
    claim: ClaimOut = Field(description="What the model said.")
    why: str = Field(description="Why the checker removed it.")


class CompareResponse(BaseModel):
    model_version: str = Field(description="Version of the artifact bundle that answered.")
    facts: dict[str, dict[str, Any]] = Field(
        description="From the catalog: attribute -> {item_id: value} for a comparison, "
        "attribute -> {value: items} (price: quartiles) for guidance."
    )
    claims: list[ClaimOut] = Field(description="The model's claims the catalog supports.")
    flagged: list[FlaggedOut] = Field(description="Claims the checker removed, and why.")
    degraded: list[str] = Field(
        description="llm_timeout / llm_error / llm_unavailable: facts only, no claims."
    )
