"""Similar items, health and readiness, metrics, the error shape everywhere, settings, swap."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle
from serving.app import create_app
from serving.settings import ServingSettings, get_settings
from tests.serving.conftest import assert_error


def test_similar_items(client: TestClient, bundle: Bundle) -> None:
    item = str(bundle.item_ids[0])
    r = client.get(f"/v1/items/{item}/similar", params={"k": 6})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["item_id"] == item and body["source"] == "covisit"
    assert body["model_version"] == bundle.version
    ids = [it["item_id"] for it in body["items"]]
    assert 0 < len(ids) <= 6 and item not in ids and len(set(ids)) == len(ids)
    scores = [it["score"] for it in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_similar_errors(client: TestClient, bundle: Bundle) -> None:
    error = assert_error(client.get("/v1/items/no-such-item/similar"), 404, "item_id")
    assert error["type"] == "not_found" and "no-such-item" in error["message"]
    item = str(bundle.item_ids[0])
    assert_error(client.get(f"/v1/items/{item}/similar", params={"k": 0}), 422, "k")
    assert_error(client.get(f"/v1/items/{item}/similar", params={"k": "many"}), 422, "k")


def test_health_and_readiness(client: TestClient, bundle: Bundle) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["model_version"] == bundle.version
    assert body["ranker"] == "lightgbm" and body["sources"] == bundle.retriever.names


def test_no_bundle_means_not_ready_until_a_swap(settings: ServingSettings, bundle: Bundle) -> None:
    app = create_app(settings)
    client = TestClient(app)
    assert client.get("/healthz").status_code == 200
    assert assert_error(client.get("/readyz"), 503)["type"] == "unavailable"
    assert_error(client.post("/v1/recommend", json={"user_id": "u"}), 503)
    assert_error(client.post("/v1/rank", json={"item_ids": ["a"]}), 503)
    assert_error(client.get("/v1/items/a/similar"), 503)
    assert app.state.serving.swap(bundle) is None
    assert client.get("/readyz").json()["model_version"] == bundle.version
    assert client.post("/v1/recommend", json={"user_id": "u"}).status_code == 200
    previous = app.state.serving.swap(bundle)
    assert previous is not None and previous.version == bundle.version


def test_a_bundle_that_fails_to_load_is_named_by_readyz(tmp_path: Path) -> None:
    settings = ServingSettings(
        bundle_path=tmp_path / "missing", events_path=tmp_path / "events.sqlite"
    )
    with TestClient(create_app(settings)) as client:  # runs the start-up load
        error = assert_error(client.get("/readyz"), 503)
        assert "manifest.json" in error["message"] and "missing" in error["message"]


def test_metrics_count_requests_stages_and_fallbacks(client: TestClient, bundle: Bundle) -> None:
    # the load's trial request answered the first user and a cold one: the candidate cache has
    # their histories, so the second user is retrieved (a miss) and the cold one is a hit
    client.post("/v1/recommend", json={"user_id": str(bundle.user_ids[1])})
    client.post("/v1/recommend", json={"user_id": "never-seen"})
    client.post("/v1/recommend", json={"k": 1})
    client.get("/v1/items/nope/similar")
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for line in (
        'recsys_requests_total{endpoint="/v1/recommend",method="POST",status="200"} 2.0',
        'recsys_requests_total{endpoint="/v1/recommend",method="POST",status="422"} 1.0',
        'recsys_requests_total{endpoint="/v1/items/{item_id}/similar",method="GET",status="404"}',
        'recsys_fallbacks_total{endpoint="recommend",reason="cold_start"} 1.0',
        'recsys_candidates_count{endpoint="recommend"} 2.0',
        f'recsys_bundle_info{{version="{bundle.version}"}} 1.0',
        'recsys_request_cache{cache="candidates",stat="hits"} 1.0',
        'recsys_request_cache{cache="candidates",stat="misses"} 3.0',
        'recsys_request_cache{cache="candidates",stat="entries"} 3.0',
        'recsys_request_cache{cache="ranked",stat="hits"} 1.0',  # cold users rank alike
        'recsys_request_cache{cache="ranked",stat="misses"} 3.0',
    ):
        assert line in text, line
    for stage in ("history", "retrieval", "ranking"):
        count = f'recsys_stage_latency_seconds_count{{endpoint="recommend",stage="{stage}"}}'
        assert f"{count} 2.0" in text
    assert 'recsys_source_latency_seconds_count{source="covisit"}' in text
    assert 'recsys_request_latency_seconds_bucket{endpoint="/v1/recommend"' in text


def test_every_error_has_the_one_shape(client: TestClient, settings: ServingSettings) -> None:
    assert assert_error(client.get("/v1/nothing-here"), 404)["type"] == "not_found"
    assert assert_error(client.get("/v1/recommend"), 405)["type"] == "method_not_allowed"
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail")

    error = assert_error(TestClient(app, raise_server_exceptions=False).get("/boom"), 500)
    assert error["type"] == "internal_error" and "secret" not in error["message"]


def test_openapi_documents_every_field(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert {"RecommendRequest", "RankResponse", "SimilarResponse", "ErrorResponse"} <= set(schemas)
    undocumented = [
        f"{name}.{field}"
        for name, schema in schemas.items()
        for field, prop in schema.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undocumented == []
    for path in ("/v1/recommend", "/v1/rank"):
        error = spec["paths"][path]["post"]["responses"]["422"]
        assert error["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_BUNDLE_PATH", "/srv/bundles/shop")
    get_settings.cache_clear()
    try:
        settings = get_settings()
        assert settings.bundle_path == Path("/srv/bundles/shop")
        assert settings.admin_api_key is None  # admin routes stay off without a key
        assert get_settings() is settings
    finally:
        get_settings.cache_clear()
    monkeypatch.setenv("RECSYS_ADMIN_API_KEY", "s3cret")
    key = ServingSettings().admin_api_key
    assert key is not None and key.get_secret_value() == "s3cret" and "s3cret" not in repr(key)


def test_an_empty_key_is_named_in_the_error(client: TestClient) -> None:
    """Found by the fuzzer: an extra key "" used to leave `param` empty."""
    r = client.post("/v1/recommend", json={"user_id": "u1", "": None})
    assert_error(r, 422, '[""]')
