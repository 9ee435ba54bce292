"""The list endpoints' fast lane (serving.list_route) answers exactly as FastAPI's own path:
the same status and body for valid, odd and invalid requests, with the lane taken only by the
valid JSON ones within the limits, and its requests counted in the same metrics."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import APIRouter, Response
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from recsys.artifacts import Bundle
from serving import deps
from serving.app import create_app
from serving.deps import ListDepsDep, ServedDep
from serving.list_route import ListLaneApp, ListRoute
from serving.recommend.protocol import RecommendRequest
from serving.recommend.router import router as recommend_router
from serving.settings import ServingSettings
from tests.serving.conftest import assert_error

JSON = "application/json"


def _cases(bundle: Bundle) -> list[tuple[str, bytes, str | None, bool]]:
    """(path, body, content type, whether the lane answers it)."""
    user = str(bundle.user_ids[3])
    items = [str(i) for i in bundle.item_ids[:6]]
    ok = [
        ("/v1/recommend", {"user_id": user, "k": 5, "request_id": "r1"}),
        ("/v1/recommend", {"user_id": "nobody-at-all", "k": 3, "request_id": "r2"}),
        (
            "/v1/recommend",
            {
                "user_id": user,
                "k": 4,
                "request_id": "r3",
                "explain": True,
                "include_item": True,
                "explore": False,
            },
        ),
        (
            "/v1/recommend",
            {"user_id": user, "request_id": "r4", "filters": {"price_max": 50.0, "in_stock": True}},
        ),
        ("/v1/search", {"query": "red shoes", "k": 5, "request_id": "r5"}),
        (
            "/v1/rank",
            {"user_id": user, "item_ids": [*items, "not-an-item"], "k": 4, "request_id": "r6"},
        ),
    ]
    bad = [
        ("/v1/recommend", {"user_id": user, "k": "5"}),  # strict: "5" is not 5
        ("/v1/recommend", {"user_id": user, "k": 0}),
        ("/v1/recommend", {"user_id": user, "colour": "red"}),  # extra field
        ("/v1/recommend", {"k": 3}),  # no user
        ("/v1/recommend", [{"user_id": user}]),  # not an object
        ("/v1/search", {"query": "", "k": 5}),
        ("/v1/rank", {"user_id": user, "item_ids": "x"}),
    ]
    # valid, but the endpoint refuses it (a CatalogError): the lane maps it as FastAPI does
    refused = [("/v1/recommend", {"user_id": user, "filters": {"price_min": 90, "price_max": 9}})]
    cases = [(path, json.dumps(body).encode(), JSON, True) for path, body in ok + refused]
    cases += [(path, json.dumps(body).encode(), JSON, False) for path, body in bad]
    recommend = json.dumps(ok[0][1]).encode()
    cases += [
        ("/v1/recommend", recommend, "application/json; charset=utf-8", False),  # FastAPI's
        ("/v1/recommend", recommend, "text/plain", False),
        ("/v1/recommend", recommend, None, False),
        ("/v1/recommend", b'{"user_id": "u1", "k": 3', JSON, False),  # cut short
        ("/v1/recommend", b"\xff\xfe{}", JSON, False),  # not UTF-8
        ("/v1/recommend", b"", JSON, False),
        ("/v1/recommend", b"[" * 50_000 + b"]" * 50_000, JSON, False),  # past the recursion limit
        ("/v1/recommend", b'{"user_id": "\\ud800"}', JSON, False),  # a lone surrogate: 422
        ("/v1/recommend", b'{"user_id": "' + b"u" * (1 << 20) + b'"}', JSON, False),  # 413
        ("/v1/recommend?" + "q=x&" * 3000, recommend, JSON, False),  # URL too long: 414
        # not the route's path: FastAPI redirects it (307) and the lane answers the redirect
        ("/v1/recommend/", recommend, JSON, True),
    ]
    return cases


def _answer(client: TestClient, path: str, body: bytes, content_type: str | None) -> Any:
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.post(path, content=body, headers=headers)
    return response.status_code, response.json()


def test_the_fast_lane_answers_as_fastapi_does(
    bundle: Bundle, settings: ServingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[str] = []
    served = deps.served

    async def counted(request: Any) -> Any:  # the lane looks the dependency up by name
        taken.append(request.url.path)
        return await served(request)

    monkeypatch.setattr(deps, "served", counted)
    fast, slow = create_app(settings, bundle), create_app(settings, bundle)
    assert fast.state.list_lane
    slow.state.list_lane = False  # every request down FastAPI's path
    for path, body, content_type, laned in _cases(bundle):
        before = len(taken)
        got = _answer(TestClient(fast), path, body, content_type)
        lane = len(taken) > before
        expected = _answer(TestClient(slow), path, body, content_type)
        assert got == expected, (path[:80], body[:80], content_type)
        assert len(taken) == before + lane  # FastAPI's path calls the dependency it holds
        assert lane == laned, (path[:80], body[:80], got)
    assert len(taken) == 8, taken  # the valid JSON requests at the routes' paths
    assert _requests(fast) == _requests(slow)  # counted alike, by route and status


def _requests(app: Any) -> dict[tuple[str, ...], float]:
    """recsys_requests_total by (endpoint, method, status), as /metrics shows them."""
    text = TestClient(app).get("/metrics").text
    return {
        (s.labels["endpoint"], s.labels["method"], s.labels["status"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "recsys_requests_total" and s.labels["endpoint"] != "/metrics"
    }


def test_a_router_included_with_a_prefix_takes_fastapi_s_path() -> None:
    app = ListLaneApp()
    app.include_router(recommend_router, prefix="/shop")
    assert app._lanes == {}  # the prefix is FastAPI's to apply, and so is the request
    app.include_router(recommend_router)
    assert list(app._lanes) == ["/v1/recommend"]


def test_no_bundle_is_the_same_503(settings: ServingSettings) -> None:
    app = create_app(settings)  # nothing loaded
    response = TestClient(app).post("/v1/recommend", json={"user_id": "u1"})
    assert_error(response, 503)
    app.state.list_lane = False
    assert TestClient(app).post("/v1/recommend", json={"user_id": "u1"}).json() == response.json()


def test_the_lane_is_closed_with_opentelemetry_on(settings: ServingSettings) -> None:
    assert not create_app(settings.model_copy(update={"otel": True})).state.list_lane


@pytest.mark.parametrize("shape", ["sync", "two bodies", "no deps", "dict body"])
def test_a_route_of_another_shape_is_refused_when_built(shape: str) -> None:
    router = APIRouter(route_class=ListRoute)

    if shape == "sync":

        def endpoint(body: RecommendRequest, served: ServedDep, deps: ListDepsDep) -> Response:
            raise AssertionError

    elif shape == "two bodies":

        async def endpoint(  # type: ignore[misc]
            body: RecommendRequest, other: RecommendRequest, deps: ListDepsDep
        ) -> Response:
            raise AssertionError

    elif shape == "no deps":

        async def endpoint(body: RecommendRequest) -> Response:  # type: ignore[misc]
            raise AssertionError

    else:

        async def endpoint(  # type: ignore[misc]
            body: dict[str, Any], served: ServedDep, deps: ListDepsDep
        ) -> Response:
            raise AssertionError

    with pytest.raises(TypeError, match="ListRoute serves async def"):
        router.post("/x")(endpoint)
