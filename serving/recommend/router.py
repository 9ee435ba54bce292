"""POST /v1/recommend."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.deps import ListDepsDep, ServedDep
from serving.errors import error_responses
from serving.links import list_links
from serving.list_route import ListRoute
from serving.recommend import service
from serving.recommend.protocol import RecommendRequest, RecommendResponse
from serving.responses import model_json

router = APIRouter(prefix="/v1", tags=["recommend"], route_class=ListRoute)


@router.post(
    "/recommend",
    response_model=RecommendResponse,
    response_model_exclude_unset=True,
    responses={**error_responses(422, 503), **list_links()},
    summary="Recommend items for a shopper",
)
# async on purpose: the pipeline is a few ms of CPU that a worker runs one at a time anyway
# (GIL, the bundle lock); inline it skips two thread-pool hops. --workers scales it out.
async def recommend(body: RecommendRequest, served: ServedDep, deps: ListDepsDep) -> Response:
    """Retrieval over every candidate source, merged, ranked by the bundle's ranker, then the
    decision layer: filters, business rules, diversity and exploration."""
    return model_json(await service.recommend(served, body, deps))
