"""Bad input is a 4xx in the error shape, never a 500 or a 100 MB echo (issue 15's probes)."""

from __future__ import annotations

import dataclasses
import json

from fastapi.testclient import TestClient

from recsys.artifacts import Bundle
from recsys.events import MAX_TS, Event, InvalidEventError
from serving.app import create_app
from serving.settings import ServingSettings
from tests.serving.conftest import assert_error


def test_a_body_over_the_cap_is_413(client: TestClient, bundle: Bundle) -> None:
    huge = {"item_ids": ["x" * 100_000] * 20}  # 2 MB: the probe sent 100 MB like this
    error = assert_error(client.post("/v1/rank", json=huge), 413)
    assert error["type"] == "payload_too_large" and str(1 << 20) in error["message"]


def test_a_streamed_body_over_the_cap_is_413_without_a_length(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]  # no Content-Length: chunked
        yield b'{"item_ids": ["'
        for _ in range(40):
            yield b"y" * 50_000
        yield b'"]}'

    r = client.post("/v1/rank", content=chunks(), headers={"content-type": "application/json"})
    assert_error(r, 413)


def test_long_ids_are_422_naming_the_id(client: TestClient, bundle: Bundle) -> None:
    ids = [str(bundle.item_ids[0]), "z" * 257]
    r = client.post("/v1/rank", json={"item_ids": ids})
    assert "at most 256" in assert_error(r, 422, "item_ids[1]")["message"]
    r = client.post("/v1/recommend", json={"user_id": "u", "filters": {"brands": ["b" * 300]}})
    assert_error(r, 422, "filters.brands[0]")


def test_unknown_ids_echoed_back_stay_small(client: TestClient) -> None:
    ids = [f"{i:04d}" + "q" * 250 for i in range(1000)]  # the most the caps allow
    r = client.post("/v1/rank", json={"item_ids": ids})
    assert r.status_code == 200 and len(r.json()["unknown_item_ids"]) == 1000
    assert len(r.content) < 300_000


def test_ts_beyond_the_int64_range_is_422_not_500(client: TestClient, bundle: Bundle) -> None:
    item = str(bundle.item_ids[0])
    for ts in (2**63, 2**64 + 5, MAX_TS + 1):
        body = {"event_id": f"e-{ts}", "user_id": "u1", "item_id": item, "event": "view", "ts": ts}
        assert_error(client.post("/v1/events", json=body), 422, "ts")
    ok = {"event_id": "e-max", "user_id": "u1", "item_id": item, "event": "view", "ts": MAX_TS}
    assert client.post("/v1/events", json=ok).status_code == 200
    try:
        Event("e", "u", item, "view", ts=2**63)
    except InvalidEventError as exc:
        assert exc.param == "ts"
    else:
        raise AssertionError("an out-of-range ts was accepted by the event log's API")


def test_a_lone_surrogate_is_422_naming_the_field(client: TestClient, bundle: Bundle) -> None:
    body = '{"item_ids": ["' + str(bundle.item_ids[0]) + '", "bad\\ud800id"]}'
    r = client.post("/v1/rank", content=body, headers={"content-type": "application/json"})
    assert "surrogate" in assert_error(r, 422, "item_ids[1]")["message"]
    lone_low = '{"user_id": "\\udc00"}'
    r = client.post("/v1/recommend", content=lone_low, headers={"content-type": "application/json"})
    assert_error(r, 422, "user_id")
    pair = json.dumps({"item_ids": [str(bundle.item_ids[0]), "ok\U0001f600"]})  # a real pair
    r = client.post("/v1/rank", content=pair, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["unknown_item_ids"] == ["ok\U0001f600"]


def test_a_url_over_the_cap_is_414_in_the_error_shape(client: TestClient) -> None:
    r = client.get("/v1/items/" + "i" * 10_000 + "/similar")
    assert assert_error(r, 414)["type"] == "uri_too_long"
    r = client.get("/v1/items/i1/similar?k=5&pad=" + "p" * 10_000)
    assert_error(r, 414)


def test_rewrite_auto_on_a_catalog_without_prices_is_not_a_price_error(
    bundle: Bundle, settings: ServingSettings
) -> None:
    unpriced = dataclasses.replace(bundle.items, price=None)
    shop = dataclasses.replace(bundle, catalog=unpriced)
    client = TestClient(create_app(settings, shop))
    word = str(bundle.items.title[0]).split()[0]  # type: ignore[index]
    r = client.post("/v1/search", json={"query": f"{word} under 50", "rewrite": "auto"})
    assert r.status_code == 200, r.text
