"""One item's details, and similar items (the bundle's item-to-item source), by item id."""

from __future__ import annotations

import numpy as np

from serving.errors import UnknownItemError
from serving.items.protocol import SimilarItem, SimilarResponse
from serving.lists.details import item_details
from serving.lists.protocol import ItemDetails
from serving.state import Served


def details(served: Served, item_id: str) -> ItemDetails:
    idx = served.item_index.get(item_id)
    if idx is None:
        raise UnknownItemError(item_id)
    return item_details(served.catalog, idx)


def similar(served: Served, item_id: str, k: int) -> SimilarResponse:
    idx = served.item_index.get(item_id)
    if idx is None:
        raise UnknownItemError(item_id)
    source = served.similar_source
    with served.lock:
        ids, scores = source.model.similar_items(np.array([idx], dtype=np.int32), k)
    item_ids = served.bundle.item_ids
    items = [
        SimilarItem(item_id=str(item_ids[i]), score=float(s))
        for i, s in zip(ids[0], scores[0], strict=True)
        if i >= 0 and i != idx
    ]
    return SimilarResponse(
        model_version=served.version, item_id=item_id, source=source.name, items=items
    )
