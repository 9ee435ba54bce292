"""What every list endpoint (recommend, search, rank) reads and answers: filters, scored items,
the decision log entries and the common response fields."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from recsys.decision import Filters

# FilterSpec and the decision layer's Filters carry the same fields (lists and dicts here,
# tuples there)
_FILTER_FIELDS = tuple(f.name for f in fields(Filters))
FilterValue = Annotated[str, StringConstraints(max_length=256)]
AttributeKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]
AttributeValues = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=200)]],
    Field(min_length=1, max_length=100),
]


class ItemDetails(BaseModel):
    """What a shopper sees of an item: the catalog row, unknown fields null."""

    item_id: str = Field(description="Catalog item id.")
    title: str | None = Field(description="Product title; null when the catalog has none.")
    brand: str | None = Field(description="Brand; null when unknown.")
    category: str | None = Field(
        description="Category path such as 'Fashion > Outerwear > Winter Jackets'; null when "
        "unknown."
    )
    price: float | None = Field(description="Price in the catalog's currency; null when unknown.")
    in_stock: bool | None = Field(
        description="Whether the item can be bought now; null when the catalog does not say."
    )
    attributes: dict[str, str] = Field(
        description="Item attributes as text, e.g. {'colour': 'olive', 'size': 'XL'}; a list "
        "value reads comma-separated."
    )


class FeatureContribution(BaseModel):
    feature: str = Field(description="Ranking feature, e.g. 'score_covisit', 'hist_len'.")
    value: float = Field(description="The feature's value for this item and shopper.")
    contribution: float = Field(
        description="Its additive share of the ranker's score (TreeSHAP): the shares of every "
        "feature plus the model's bias sum to the score. Positive lifts the item."
    )


class ScoredItem(BaseModel):
    item_id: str = Field(description="Catalog item id.")
    position: int | None = Field(
        default=None,
        description="0-based position in the list; send it back with the list's request_id "
        "on /v1/events to attribute a click or purchase to this list.",
    )
    score: float = Field(
        description="The ranker's score; the fused retrieval (RRF) score when no ranker serves. "
        "Items are ordered by it, best first."
    )
    reasons: list[str] | None = Field(
        default=None,
        description="Why the item is here (explain=true only), in shopper terms first, e.g. "
        "'often viewed or bought with <title>', 'like <title> you viewed', 'popular now', "
        "'matches 'navy', priced up to 100'; then any decision note, and last the retrieval "
        "sources that found it, e.g. 'sources: covisit, als'.",
    )
    item: ItemDetails | None = Field(
        default=None, description="The item's title, price, category... (include_item=true only)."
    )
    contributions: list[FeatureContribution] | None = Field(
        default=None,
        description="explain=true with a LightGBM ranker serving: the three features that moved "
        "the ranker's score most, largest first (exact TreeSHAP shares of the ranker's score; "
        "a blend with the fused order is not split). Absent for the DLRM, which has no exact "
        "additive split, and when no ranker serves.",
    )


class FilterSpec(BaseModel):
    """Caller filters, applied after ranking; removed items are reported in the decision log."""

    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not 5: the schema says

    price_min: float | None = Field(default=None, ge=0, description="Lowest price allowed.")
    price_max: float | None = Field(default=None, ge=0, description="Highest price allowed.")
    categories: list[FilterValue] = Field(
        default_factory=list,
        max_length=50,
        description="Category paths such as 'Fashion > Outerwear'; an item under any passes.",
    )
    brands: list[FilterValue] = Field(
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
    exclude_item_ids: list[FilterValue] = Field(
        default_factory=list, max_length=1000, description="Item ids never to return."
    )
    attributes: dict[AttributeKey, AttributeValues] = Field(
        default_factory=dict,
        max_length=20,
        description="Item attributes allowed, {key: [values]}, e.g. {'colour': ['blue', 'navy']}: "
        "an item passes when, for every key, its value is one of the listed ones (any case). "
        "A key or value the catalog lacks is refused with the valid ones listed.",
    )

    def to_filters(self) -> Filters:
        """The decision layer's filters; a price range upside down is a CatalogError (422)."""
        values: dict[str, Any] = {}
        for name in _FILTER_FIELDS:
            value = getattr(self, name)
            if isinstance(value, dict):  # hashable there: (key, values) pairs
                value = tuple((k, tuple(v)) for k, v in value.items())
            values[name] = tuple(value) if isinstance(value, list) else value
        return Filters(**values)

    @classmethod
    def from_filters(cls, filters: Filters) -> FilterSpec:
        """The request form of the decision layer's filters (what the agent's tools build)."""
        values: dict[str, Any] = {}
        for name in _FILTER_FIELDS:
            value = getattr(filters, name)
            if get_origin(cls.model_fields[name].annotation) is dict:
                value = {k: list(v) for k, v in value}
            values[name] = list(value) if isinstance(value, tuple) else value
        return cls.model_validate(values)


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
    arm: str | None = Field(
        default=None,
        description="Experiment arm that answered (present while an experiment runs); the "
        "decision log names it too.",
    )
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
        description="What fell back: LLM steps to the non-LLM answer (llm_timeout, llm_error, "
        "llm_unavailable); features_unavailable: the online feature store failed, the ranker "
        "scored on neutral features.",
    )
