"""The list endpoints' fast lane (serving.list_route) answers exactly as FastAPI's own path:
the same status and body for valid, odd and invalid requests, with the lane taken only by the
valid JSON ones."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import APIRouter, Response
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle
from serving import deps
from serving.app import create_app
from serving.deps import ListDepsDep, ServedDep
from serving.list_route import ListRoute
from serving.recommend.protocol import RecommendRequest
from serving.settings import ServingSettings
from tests.serving.conftest import assert_error

JSON = "application/json"


def _cases(bundle: Bundle) -> list[tuple[str, bytes, str | None]]:
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
    cases: list[tuple[str, bytes, str | None]] = [
        (path, json.dumps(body).encode(), JSON) for path, body in ok + bad
    ]
    recommend = json.dumps(ok[0][1]).encode()
    cases += [
        ("/v1/recommend", recommend, "application/json; charset=utf-8"),  # FastAPI's path
        ("/v1/recommend", recommend, "text/plain"),
        ("/v1/recommend", recommend, None),
        ("/v1/recommend", b'{"user_id": "u1", "k": 3', JSON),  # cut short
        ("/v1/recommend", b"\xff\xfe{}", JSON),  # not UTF-8
        ("/v1/recommend", b"", JSON),
        ("/v1/recommend", b"[" * 50_000 + b"]" * 50_000, JSON),  # nested past the recursion limit
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
    for path, body, content_type in _cases(bundle):
        before = len(taken)
        got = _answer(TestClient(fast), path, body, content_type)
        lane = len(taken) > before
        expected = _answer(TestClient(slow), path, body, content_type)
        assert got == expected, (path, body[:80], content_type)
        assert len(taken) == before + lane  # FastAPI's path calls the dependency it holds
        assert lane == (got[0] == 200 and content_type == JSON), (path, body[:80], got)
    assert len(taken) == 6, taken  # the six valid JSON requests


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
