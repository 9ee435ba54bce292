"""POST /v1/rank."""

from __future__ import annotations

from fastapi import APIRouter, Response

from serving.deps import ListDepsDep, ServedDep
from serving.errors import error_responses
from serving.list_route import ListRoute
from serving.rank import service
from serving.rank.protocol import RankRequest, RankResponse
from serving.responses import model_json

router = APIRouter(prefix="/v1", tags=["rank"], route_class=ListRoute)


@router.post(
    "/rank",
    response_model=RankResponse,
    response_model_exclude_unset=True,
    responses=error_responses(422, 503),
    summary="Rank caller-supplied items for a shopper",
)
# async on purpose: the pipeline is a few ms of CPU that a worker runs one at a time anyway
# (GIL, the bundle lock); inline it skips two thread-pool hops. --workers scales it out.
async def rank(body: RankRequest, served: ServedDep, deps: ListDepsDep) -> Response:
    """Orders the known given items with the bundle's ranker; unknown ids are reported back."""
    return model_json(service.rank(served, body, deps))
