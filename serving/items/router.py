"""GET /v1/items/{item_id}/similar."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from serving.deps import ServedDep
from serving.errors import error_responses
from serving.items import service
from serving.items.protocol import SimilarResponse

router = APIRouter(prefix="/v1/items", tags=["items"])


@router.get(
    "/{item_id}/similar",
    response_model=SimilarResponse,
    responses=error_responses(404, 422, 503),
    summary="Items similar to an item",
)
def similar(
    item_id: Annotated[str, Path(description="Catalog item id.")],
    served: ServedDep,
    k: Annotated[int, Query(ge=1, le=500, description="How many similar items.")] = 10,
) -> SimilarResponse:
    """Nearest items by the bundle's item-to-item source; 404 for an id not in the catalog."""
    return service.similar(served, item_id, k)
