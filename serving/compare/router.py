"""POST /v1/compare."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from serving.compare import service
from serving.compare.protocol import CompareRequest, CompareResponse
from serving.deps import ListDepsDep, ServedDep
from serving.errors import error_responses

router = APIRouter(prefix="/v1", tags=["compare"])
EVENT_STREAM = "text/event-stream"
STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            EVENT_STREAM: {
                "example": 'event: facts\ndata: {"model_version": "...", "facts": {...}}\n\n'
                'event: claims\ndata: {"claims": [...], "flagged": [...]}\n\n'
                'event: done\ndata: {"degraded": []}\n\n'
            }
        },
        "description": "JSON (below), or with `stream` (or Accept: text/event-stream) "
        "server-sent events: facts, claims, done.",
    }
}


@router.post(
    "/compare",
    response_model=CompareResponse,
    responses={**error_responses(422, 503), **STREAM_DOC},
    summary="Compare items, or guide a choice in a category, grounded in the catalog",
)
async def compare(
    body: CompareRequest, request: Request, served: ServedDep, deps: ListDepsDep
) -> CompareResponse | StreamingResponse:
    """Catalog facts side by side, plus the LLM's claims that the catalog supports (each cites
    an item and attribute); unsupported claims are listed as flagged, never as the answer.
    Streamed, the facts come first, at once, and the claims follow within the deadline."""
    if body.stream or EVENT_STREAM in request.headers.get("accept", ""):
        events = await service.prepare_events(served, body, deps)
        # no-cache and no proxy buffering: each event must reach the shopper when it is sent
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events, media_type=EVENT_STREAM, headers=headers)
    return await service.compare(served, body, deps)
