"""POST /v1/events."""

from __future__ import annotations

from fastapi import APIRouter

from serving.deps import MetricsDep, StateDep
from serving.errors import error_responses
from serving.events import service
from serving.events.protocol import EventRequest, EventResponse

router = APIRouter(prefix="/v1", tags=["events"])


@router.post(
    "/events",
    response_model=EventResponse,
    responses=error_responses(409, 422, 503),
    summary="Record a shopper event",
)
def record_event(body: EventRequest, state: StateDep, metrics: MetricsDep) -> EventResponse:
    """Log the event, then apply it: the shopper's next /v1/recommend or /v1/rank sees it.

    200 once the event is committed to the log (``duplicate`` true when its ``event_id`` was
    already logged: acknowledged again, applied once). 409 (``conflict``, param ``event_id``):
    the id was logged with another body. 422: a malformed body (``invalid_request``, param names
    the field) or an ``item_id`` not in the served catalog (``unknown_item``, param
    ``item_id``). 503: no bundle served to check items against.
    """
    return service.record(state, body, metrics)
