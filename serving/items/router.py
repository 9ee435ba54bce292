"""GET /v1/items/{item_id} and GET /v1/items/{item_id}/similar."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from serving.deps import ServedDep
from serving.errors import error_responses
from serving.items import service
from serving.items.protocol import SimilarResponse
from serving.lists.protocol import ItemDetails

router = APIRouter(prefix="/v1/items", tags=["items"])
ItemId = Annotated[str, Path(min_length=1, max_length=256, description="Catalog item id.")]


@router.get(
    "/{item_id}",
    response_model=ItemDetails,
    responses=error_responses(404, 422, 503),
    summary="An item's details",
)
def item(item_id: ItemId, served: ServedDep) -> ItemDetails:
    """The item's title, brand, category, price, stock and attributes from the served bundle's
    catalog; 404 for an id not in it."""
    return service.details(served, item_id)


@router.get(
    "/{item_id}/similar",
    response_model=SimilarResponse,
    responses=error_responses(404, 422, 503),
    summary="Items similar to an item",
)
def similar(
    item_id: ItemId,
    served: ServedDep,
    k: Annotated[int, Query(ge=1, le=500, description="How many similar items.")] = 10,
) -> SimilarResponse:
    """Nearest items by the bundle's item-to-item source; 404 for an id not in the catalog."""
    return service.similar(served, item_id, k)
