"""/docs and /redoc load nothing from another host, and the schema's examples name real ids."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from recsys.artifacts import Bundle
from serving.app import create_app
from serving.chat.protocol import ChatRequest
from serving.compare.protocol import CompareRequest
from serving.events.protocol import EventRequest
from serving.openapi_docs import EXAMPLE_PATHS, STATIC_PICKS, STATIC_URL
from serving.rank.protocol import RankRequest
from serving.recommend.protocol import RecommendRequest
from serving.search.protocol import SearchRequest
from serving.settings import ServingSettings

REQUESTS: dict[str, type[BaseModel]] = {
    "/v1/recommend": RecommendRequest,
    "/v1/search": SearchRequest,
    "/v1/rank": RankRequest,
    "/v1/events": EventRequest,
    "/v1/compare": CompareRequest,
    "/v1/chat": ChatRequest,
}
URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
REMOTE = re.compile(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


def _assets(client: TestClient, page: str) -> list[str]:
    response = client.get(page)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert REMOTE.search(html) is None, f"{page} names another host: {REMOTE.search(html)}"
    urls = URL.findall(html)
    assert urls, html
    return urls


def _examples(spec: dict[str, Any], path: str) -> dict[str, Any]:
    media = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    examples: dict[str, Any] = media["examples"]
    assert examples, path
    return examples


@pytest.mark.parametrize(
    ("page", "files"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
def test_docs_pages_load_only_the_apps_own_assets(
    client: TestClient, page: str, files: set[str]
) -> None:
    urls = _assets(client, page)
    assert {u.rsplit("/", 1)[-1] for u in urls} == files
    for url in urls:
        assert url.startswith(f"{STATIC_URL}/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 4000, (url, len(asset.content))  # the real file, not a stub
    assert client.get(f"{STATIC_URL}/no-such-file.js").status_code == 404


def test_swagger_ui_reads_the_apps_schema_and_has_its_oauth2_redirect(client: TestClient) -> None:
    html = client.get("/docs").text
    assert "url: '/openapi.json'" in html
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html
    redirect = client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and "oauth2" in redirect.text.lower()


def test_docs_routes_stay_out_of_the_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc", "/static"))]


def test_docs_requests_are_counted_by_route(client: TestClient) -> None:
    client.get("/docs")
    client.get(f"{STATIC_URL}/swagger-ui.css")
    metrics = client.get("/metrics").text
    assert 'endpoint="/docs",method="GET",status="200"' in metrics
    assert f'endpoint="{STATIC_URL}",method="GET",status="200"' in metrics


def test_examples_name_the_served_bundles_shopper_and_items(
    client: TestClient, bundle: Bundle
) -> None:
    spec = client.get("/openapi.json").json()
    users = {str(u) for u in bundle.user_ids}
    items = {str(i) for i in bundle.item_ids}
    for path in EXAMPLE_PATHS:
        for example in _examples(spec, path).values():
            assert bundle.version in example["description"], example
            value = example["value"]
            REQUESTS[path].model_validate(value)  # a valid request, strict types and all
            if path != "/v1/recommend":  # its cold-start example names an unknown shopper
                assert value.get("user_id") in users | {None}, (path, value)
            given = value.get("item_ids", [value["item_id"]] if "item_id" in value else [])
            assert set(given) - {"no-such-item"} <= items, (path, value)

    shopper = _examples(spec, "/v1/recommend")["shopper"]["value"]["user_id"]
    assert shopper in users
    history = bundle.sequences.user(bundle.user_index()[shopper])
    assert len(history) >= 1  # a shopper with history, not a cold start
    a, b = _examples(spec, "/v1/rank")["shopper"]["value"]["item_ids"]
    assert a != b
    title = str(bundle.items.require("title", "title")[bundle.items.index[a]]).lower()
    query = _examples(spec, "/v1/search")["query"]["value"]["query"]
    assert query and all(word in title for word in query.split()), (query, title)
    similar = spec["paths"]["/v1/items/{item_id}/similar"]["get"]["parameters"]
    assert [p["example"] for p in similar if p["name"] == "item_id"] == [a]


def test_examples_are_answered(client: TestClient) -> None:
    """The examples of the endpoints without an LLM, sent as they are, succeed."""
    spec = client.get("/openapi.json").json()
    for path in ("/v1/recommend", "/v1/search", "/v1/rank", "/v1/events"):
        for name, example in _examples(spec, path).items():
            response = client.post(path, json=example["value"])
            assert response.status_code == 200, (path, name, response.text)
    ranked = client.post("/v1/rank", json=_examples(spec, "/v1/rank")["unknown_item"]["value"])
    assert ranked.json()["unknown_item_ids"] == ["no-such-item"]


def test_examples_follow_the_served_bundle(bundle: Bundle, settings: ServingSettings) -> None:
    app = create_app(settings)  # nothing served yet: illustrative ids
    client = TestClient(app)
    spec = client.get("/openapi.json").json()
    recommend = _examples(spec, "/v1/recommend")
    assert recommend["shopper"]["value"]["user_id"] == STATIC_PICKS.user
    assert all("no bundle is served" in e["description"] for e in recommend.values())
    for path in EXAMPLE_PATHS:
        for example in _examples(spec, path).values():
            REQUESTS[path].model_validate(example["value"])
    assert client.get("/openapi.json").json() == spec
    assert app.openapi() is app.openapi()  # built once per bundle version

    app.state.serving.swap(bundle)
    served = client.get("/openapi.json").json()
    shopper = _examples(served, "/v1/recommend")["shopper"]["value"]["user_id"]
    assert shopper in {str(u) for u in bundle.user_ids}
    assert bundle.version in _examples(served, "/v1/chat")["shopper"]["description"]


def test_the_chat_stream_events_are_documented(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    ok = spec["paths"]["/v1/chat"]["post"]["responses"]["200"]
    assert set(ok["content"]) == {"text/event-stream"}
    description = ok["description"]
    for event in ("step", "message", "done", "error"):
        assert f"**`{event}`**" in description, event
    for field in ("thought", "tool", "trust_mode", "llm_ms", "tokens", "observation", "items",
                  "degraded", "seconds", "shown", "llm_unavailable", "step_budget"):  # fmt: skip
        assert f"`{field}`" in description, field
    example = ok["content"]["text/event-stream"]["example"]
    events = re.findall(r"^event: (\w+)$", example, re.MULTILINE)
    assert events == ["step", "step", "message", "done"]
    assert all(line.startswith(("event: ", "data: {")) for line in example.splitlines() if line)
