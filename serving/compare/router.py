"""POST /v1/compare."""

from __future__ import annotations

from fastapi import APIRouter

from serving.compare import service
from serving.compare.protocol import CompareRequest, CompareResponse
from serving.deps import ListDepsDep, ServedDep
from serving.errors import error_responses

router = APIRouter(prefix="/v1", tags=["compare"])


@router.post(
    "/compare",
    response_model=CompareResponse,
    responses=error_responses(422, 503),
    summary="Compare items, or guide a choice in a category, grounded in the catalog",
)
async def compare(body: CompareRequest, served: ServedDep, deps: ListDepsDep) -> CompareResponse:
    """Catalog facts side by side, plus the LLM's claims that the catalog supports (each cites
    an item and attribute); unsupported claims are listed as flagged, never as the answer."""
    return await service.compare(served, body, deps)
