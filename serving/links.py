"""OpenAPI links between operations: which response value feeds which request. Clients and
tools read them (schemathesis chains calls along them in its stateful tests)."""

from __future__ import annotations

from typing import Any

ITEM = "item_v1_items__item_id__get"
SIMILAR = "similar_v1_items__item_id__similar_get"


def list_links() -> dict[int | str, dict[str, Any]]:
    """A list answer's first item feeds the item and similar-items routes."""
    first = "$response.body#/items/0/item_id"
    return {200: {"description": "Successful Response", "links": {
        "FirstItem": {"operationId": ITEM, "parameters": {"item_id": first},
                      "description": "The first listed item's details."},
        "SimilarToFirstItem": {"operationId": SIMILAR, "parameters": {"item_id": first},
                               "description": "Items like the first listed one."},
    }}}  # fmt: skip
