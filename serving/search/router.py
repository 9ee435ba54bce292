"""POST /v1/search."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.deps import ListDepsDep, ServedDep
from serving.errors import error_responses
from serving.links import list_links
from serving.list_route import ListRoute
from serving.responses import model_json
from serving.search import service
from serving.search.protocol import SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["search"], route_class=ListRoute)


@router.post(
    "/search",
    response_model=SearchResponse,
    response_model_exclude_unset=True,
    responses={**error_responses(422, 503), **list_links()},
    summary="Search the catalog",
)
# async on purpose: the pipeline is a few ms of CPU that a worker runs one at a time anyway
# (GIL, the bundle lock); inline it skips two thread-pool hops. --workers scales it out.
async def search(body: SearchRequest, served: ServedDep, deps: ListDepsDep) -> Response:
    """BM25 over the catalog fused with the text encoder's index (where the bundle has one),
    then the decision layer: filters, business rules, diversity and exploration."""
    return model_json(await service.search(served, body, deps))
