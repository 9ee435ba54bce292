"""Attribute filters, item details on list items and GET /v1/items/{id}, and reasons that name
their evidence, over the session's synthetic shop."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle
from recsys.decision import Filters
from serving.lists.protocol import FilterSpec
from tests.serving.conftest import assert_error

DETAIL_KEYS = {"item_id", "title", "brand", "category", "price", "in_stock", "attributes"}


def _user(bundle: Bundle, row: int = 3) -> str:
    return str(bundle.user_ids[row])


def _colour(bundle: Bundle, index: int) -> str:
    return str(bundle.items.attribute_table().shown["colour"][index])


def _post(client: TestClient, path: str, **body: Any) -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _removed(body: dict[str, Any]) -> list[str]:
    return [d["reason"] for d in body["decisions"] if d["action"] == "removed"]


def test_attribute_filter_on_recommend(client: TestClient, bundle: Bundle) -> None:
    colours = Counter(bundle.items.attribute_table().lower["colour"])
    common = [c for c, _ in colours.most_common() if c][:2]
    # any case in the request: the catalog's colours are lowercase
    filters = {"attributes": {"colour": [c.upper() for c in common]}}
    body = _post(client, "/v1/recommend", user_id=_user(bundle), k=8, explain=True,
                 filters=filters)  # fmt: skip
    assert body["items"]
    index = bundle.items.index
    assert all(_colour(bundle, index[it["item_id"]]) in common for it in body["items"])
    removed = _removed(body)
    wanted = [c.upper() for c in common]
    assert any(r.startswith("attribute colour is ") and r.endswith(f"not one of {wanted}")
               for r in removed)  # fmt: skip


def test_attribute_filter_and_price_min_on_search(client: TestClient, bundle: Bundle) -> None:
    catalog = bundle.items
    jacket = next(i for i, t in enumerate(catalog.title) if "Jacket" in t)  # type: ignore[union-attr, arg-type]
    colour = _colour(bundle, jacket)
    body = _post(client, "/v1/search", query="jacket", k=20, explain=True,
                 filters={"attributes": {"colour": [colour]}})  # fmt: skip
    assert body["items"] and any(r.startswith("attribute colour is") for r in _removed(body))
    assert {_colour(bundle, catalog.index[it["item_id"]]) for it in body["items"]} == {colour}
    assert all(f"matches '{colour}'" in it["reasons"] for it in body["items"])

    price = catalog.price
    assert price is not None
    found = _post(client, "/v1/search", query="jacket", k=20)["items"]
    floor = float(np.median([price[catalog.index[it["item_id"]]] for it in found]))
    body = _post(client, "/v1/search", query="jacket", k=20, explain=True,
                 filters={"price_min": floor})  # fmt: skip
    assert body["items"] and all(
        price[catalog.index[it["item_id"]]] >= floor for it in body["items"]
    )
    assert any(r.startswith("price outside") for r in _removed(body))
    assert all(f"priced {floor:g} or more" in it["reasons"] for it in body["items"])


@pytest.mark.parametrize("path", ["/v1/recommend", "/v1/search"])
def test_unknown_attribute_keys_and_values_are_422(
    client: TestClient, bundle: Bundle, path: str
) -> None:
    base: dict[str, Any] = (
        {"user_id": _user(bundle)} if path == "/v1/recommend" else {"query": "jacket"}
    )
    r = client.post(path, json={**base, "filters": {"attributes": {"colour": ["bleu"]}}})
    error = assert_error(r, 422, "filters.attributes.colour")
    assert "'bleu'" in error["message"] and "'blue'" in error["message"]  # the valid ones
    r = client.post(path, json={**base, "filters": {"attributes": {"color": ["blue"]}}})
    error = assert_error(r, 422, "filters.attributes.color")
    assert "'colour'" in error["message"] and "'size'" in error["message"]
    r = client.post(path, json={**base, "filters": {"attributes": {"colour": []}}})
    assert_error(r, 422, "filters.attributes.colour")
    r = client.post(path, json={**base, "filters": {"attributes": {"colour": "blue"}}})
    assert_error(r, 422, "filters.attributes.colour")


def test_filter_spec_round_trips_attributes() -> None:
    spec = FilterSpec.model_validate({"attributes": {"colour": ["blue", "navy"]}, "brands": ["A"]})
    filters = spec.to_filters()
    assert filters.attributes == (("colour", ("blue", "navy")),) and hash(filters)
    assert FilterSpec.from_filters(filters) == spec
    assert FilterSpec.from_filters(Filters()) == FilterSpec()


@pytest.mark.parametrize("path", ["/v1/recommend", "/v1/search", "/v1/rank"])
def test_include_item_fills_every_item(client: TestClient, bundle: Bundle, path: str) -> None:
    body: dict[str, Any] = {
        "/v1/recommend": {"user_id": _user(bundle)},
        "/v1/search": {"query": "jacket"},
        "/v1/rank": {"item_ids": [str(i) for i in bundle.item_ids[:15]]},
    }[path]
    plain = _post(client, path, **body, k=5)
    assert plain["items"] and all("item" not in it for it in plain["items"])
    detailed = _post(client, path, **body, k=5, include_item=True)
    catalog = bundle.items
    for it in detailed["items"]:
        details = it["item"]
        assert set(details) == DETAIL_KEYS and details["item_id"] == it["item_id"]
        row = catalog.row(catalog.index[it["item_id"]])
        assert details["title"] == row["title"] and details["title"]
        assert details["price"] == row["price"] and details["category"] == row["category"]
        assert details["brand"] == row["brand"] and details["in_stock"] == row["in_stock"]
        assert details["attributes"] == catalog.item_attributes(catalog.index[it["item_id"]])


def test_get_item(client: TestClient, bundle: Bundle) -> None:
    item_id = str(bundle.item_ids[7])
    r = client.get(f"/v1/items/{item_id}")
    assert r.status_code == 200, r.text
    body = r.json()
    row = bundle.items.row(7)
    assert set(body) == DETAIL_KEYS and body["item_id"] == item_id
    assert body["title"] == row["title"] and body["price"] == row["price"]
    assert body["attributes"] == bundle.items.item_attributes(7) and body["attributes"]
    error = assert_error(client.get("/v1/items/no-such-item"), 404, "item_id")
    assert error["type"] == "not_found" and "'no-such-item'" in error["message"]
    assert_error(client.get("/v1/items/" + "x" * 257), 422, "item_id")
    assert_error(client.get("/v1/items/" + "x" * 257 + "/similar"), 422, "item_id")


def test_reasons_name_the_history(client: TestClient, bundle: Bundle) -> None:
    user = 3
    history = bundle.sequences.user(user)
    assert len(history)
    titles = {str(bundle.items.title[i]) for i in history}  # type: ignore[index]
    last = str(bundle.items.title[history[-1]])  # type: ignore[index]
    body = _post(client, "/v1/recommend", user_id=_user(bundle, user), k=10, explain=True)
    said = [r for it in body["items"] for r in it["reasons"][:-1]]
    assert f"like {last} you viewed" in said  # als and attributes found some
    linked = [r.removeprefix("often viewed or bought with ") for r in said
              if r.startswith("often viewed or bought with ")]  # fmt: skip
    assert set(linked) <= titles  # co-visitation names an item the shopper had
    cold = _post(client, "/v1/recommend", user_id="never-seen", k=3, explain=True)
    assert all(it["reasons"] == ["popular now", "sources: popular"] for it in cold["items"])
