"""/metrics: process and GC series, /openapi.json under its own label, the online store's
breaker state and the decision log's dropped records (issue 15)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_metrics_carry_process_gc_breaker_and_dropped_series(client: TestClient) -> None:
    assert client.get("/openapi.json").status_code == 200
    client.app.state.decision_log.dropped = 3  # type: ignore[attr-defined]
    text = client.get("/metrics").text
    assert 'recsys_requests_total{endpoint="/openapi.json",method="GET",status="200"}' in text
    assert "process_resident_memory_bytes" in text and "python_gc_collections_total" in text
    assert 'recsys_breaker_state{breaker="online_store"} 0.0' in text
    assert "recsys_decision_log_dropped 3.0" in text


def test_readyz_details_the_dependencies(client: TestClient) -> None:
    ready = client.get("/readyz").json()
    assert ready["dependencies"] == {"online_store": "closed", "event_log": "ok"}
