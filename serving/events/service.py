"""Record one event: log it durably, then apply it to the served session state."""

from __future__ import annotations

from recsys.events import Event
from serving.events.protocol import EventRequest, EventResponse
from serving.experiments.attribution import attribute
from serving.metrics import ServingMetrics
from serving.state import AppState


def record(state: AppState, request: EventRequest, metrics: ServingMetrics) -> EventResponse:
    event = Event(
        event_id=request.event_id,
        user_id=request.user_id,
        item_id=request.item_id,
        event=request.event,
        ts=request.ts,
    )
    fresh = state.record(event)
    attribute(state.events, request)
    metrics.event(event.event, duplicate=not fresh)
    return EventResponse(accepted=True, duplicate=not fresh)
