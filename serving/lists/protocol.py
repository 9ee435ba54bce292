"""What every list endpoint (recommend, search, rank) reads and answers: filters, scored items,
the decision log entries and the common response fields."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recsys.decision import Filters


class ScoredItem(BaseModel):
    item_id: str = Field(description="Catalog item id.")
    score: float = Field(
        description="The ranker's score; the fused retrieval (RRF) score when no ranker serves. "
        "Items are ordered by it, best first."
    )
    reasons: list[str] | None = Field(
        default=None,
        description="Why the item is here (explain=true only), e.g. 'found by covisit, als'.",
    )


class FilterSpec(BaseModel):
    """Caller filters, applied after ranking; removed items are reported in the decision log."""

    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not 5: the schema says

    price_min: float | None = Field(default=None, ge=0, description="Lowest price allowed.")
    price_max: float | None = Field(default=None, ge=0, description="Highest price allowed.")
    categories: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Category paths such as 'Fashion > Outerwear'; an item under any passes.",
    )
    brands: list[str] = Field(
        default_factory=list, max_length=50, description="Brands allowed (any case)."
    )
    in_stock: bool | None = Field(
        default=None,
        description="true: in-stock items only; false: out-of-stock ones too; "
        "null: the server's rule (hides them by default).",
    )
    exclude_purchased: bool | None = Field(
        default=None,
        description="Leave out what the shopper bought; null: the server's rule (on by default).",
    )
    exclude_item_ids: list[str] = Field(
        default_factory=list, max_length=1000, description="Item ids never to return."
    )

    def to_filters(self) -> Filters:
        """The decision layer's filters; a price range upside down is a CatalogError (422)."""
        return Filters(
            price_min=self.price_min,
            price_max=self.price_max,
            categories=tuple(self.categories),
            brands=tuple(self.brands),
            in_stock=self.in_stock,
            exclude_purchased=self.exclude_purchased,
            exclude_item_ids=tuple(self.exclude_item_ids),
        )


class DecisionLogEntry(BaseModel):
    item_id: str = Field(description="Catalog item id.")
    action: Literal["shown", "removed"] = Field(description="Whether the item made the list.")
    reason: str = Field(description="Why: 'ranked', 'exploration ...', 'out of stock', ...")
    score: float = Field(description="The item's score when the decision was made.")
    position: int | None = Field(default=None, description="0-based slot (shown items).")
    propensity: float | None = Field(
        default=None, description="Probability the item was shown in this slot (shown items)."
    )


class ListResponse(BaseModel):
    """What every list endpoint answers with."""

    model_version: str = Field(description="Version of the artifact bundle that answered.")
    request_id: str = Field(description="Id of this decision in the decision log.")
    items: list[ScoredItem] = Field(description="The items shown, best first.")
    decisions: list[DecisionLogEntry] | None = Field(
        default=None,
        description="Why each item was shown or removed (explain=true only): shown items in "
        "order, then removed ones, best score first.",
    )
    trace: dict[str, float] | None = Field(
        default=None, description="{stage: milliseconds} (trace=true only)."
    )
    degraded: list[str] = Field(
        default_factory=list,
        description="LLM steps that fell back to the non-LLM answer: llm_timeout, llm_error, "
        "llm_unavailable.",
    )
