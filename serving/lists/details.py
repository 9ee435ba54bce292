"""An item's catalog row in response form, for list items (include_item) and GET /v1/items/{id}."""

from __future__ import annotations

import math

from recsys.catalog import Catalog
from serving.lists.protocol import ItemDetails


def _text(value: object) -> str | None:
    # the catalog keeps "" for unknown text; the API says null
    return str(value) if value is not None and value != "" else None


def item_details(catalog: Catalog, index: int) -> ItemDetails:
    row = catalog.row(index)
    price = row.get("price")
    # JSON has no NaN or infinity: a price that is not a finite number is unknown
    if not (isinstance(price, int | float) and math.isfinite(price)):
        price = None
    in_stock = row.get("in_stock")
    return ItemDetails(
        item_id=str(row["item_id"]),
        title=_text(row.get("title")),
        brand=_text(row.get("brand")),
        category=_text(row.get("category")),
        price=None if price is None else float(price),
        in_stock=bool(in_stock) if in_stock is not None else None,
        attributes=catalog.item_attributes(index),
    )
