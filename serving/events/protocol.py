"""Request and response of POST /v1/events."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from recsys.events import MAX_EVENT_ID, MAX_TS

# recsys.data.contract.EVENTS, spelled out for the schema (a test keeps the two equal).
EventName = Literal["view", "click", "cart", "purchase", "rating"]


class EventRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not 5: the schema says

    event_id: str = Field(
        min_length=1,
        max_length=MAX_EVENT_ID,
        description="Caller-chosen id of this event. Sending it again is safe: the event is "
        "acknowledged again (duplicate=true) but applied once; the same id with a different "
        "user_id, item_id, event or ts is a 409.",
    )
    user_id: str = Field(
        min_length=1,
        max_length=256,
        description="Shopper id. Unknown ids are welcome: their events make them known "
        "(no longer cold-start).",
    )
    item_id: str = Field(
        min_length=1,
        max_length=256,
        description="Catalog item id. An id not in the served bundle's catalog is rejected "
        "(422, type unknown_item), never silently dropped.",
    )
    event: EventName = Field(description="What the shopper did, weakest signal first.")
    ts: int | None = Field(
        default=None,
        ge=0,
        le=MAX_TS,
        description="When it happened, unix seconds (at most 9999-12-31); omitted = when the "
        "server receives it.",
    )
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="request_id of the list (recommend, search, rank) the item was taken from: "
        "ties this event to that decision for click-through, conversion and off-policy "
        "evaluation. Omitted = not attributed to any list.",
    )
    position: int | None = Field(
        default=None,
        ge=0,
        le=10_000,
        description="0-based position of the item in that list (its `position` there).",
    )
    value: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Order value of a purchase, in the catalog's currency.",
    )


class EventResponse(BaseModel):
    accepted: bool = Field(
        description="Always true: the event is durably logged (it survives a restart)."
    )
    duplicate: bool = Field(
        description="True when this event_id was already logged; it was not applied again."
    )
