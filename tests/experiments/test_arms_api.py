"""Experiment arms through the API: admin routes behind the key, sticky arms shared by workers,
shadow arms never shown, ramp/promote/rollback, per-arm series and the automatic rollback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle, TrainConfig, load_bundle, train_bundle
from recsys.data.contract import Dataset
from recsys.experiments.arms import assign
from recsys.experiments.attribution import read_decisions
from recsys.retrieval.retriever import RetrievalConfig
from serving.app import create_app
from serving.settings import ServingSettings

KEY = {"X-API-Key": "sesame"}


@pytest.fixture(scope="module")
def candidate(shop: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """Another bundle of the same shop: popularity only, no ranker."""
    config = TrainConfig(sources=("popular",), retrieval=RetrievalConfig(total=50, depth=50))
    return load_bundle(train_bundle(shop, tmp_path_factory.mktemp("cand") / "bundle", config))


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_EXPERIMENTS_REFRESH_SECONDS", "0")
    monkeypatch.setenv("RECSYS_EXPERIMENTS_CHECK_SECONDS", "0")
    monkeypatch.setenv("RECSYS_EXPERIMENTS_MIN_REQUESTS", "8")
    # a p99 over 8 requests is the machine's noise, not the arm's: only the error-rate rule may
    # fire here (test_arms.py tests the latency rule on injected timings)
    monkeypatch.setenv("RECSYS_EXPERIMENTS_MAX_P99_RATIO", "1000")


def _settings(tmp_path: Path, key: str | None = "sesame") -> ServingSettings:
    return ServingSettings(
        bundle_path=tmp_path / "none",
        events_path=tmp_path / "events.sqlite",
        decision_log_path=tmp_path / "decisions.jsonl",
        load_on_start=False,
        admin_api_key=key,
    )


@pytest.fixture()
def client(env: None, bundle: Bundle, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp_path), bundle), raise_server_exceptions=False) as c:
        yield c


def _create(client: TestClient, candidate: Bundle, share: float = 0.5, **extra: Any) -> Any:
    body = {
        "name": "pop-vs-lgbm",
        "candidates": [
            {"name": "pop", "bundle_path": str(candidate.path), "share": share},
            {"name": "ghost", "bundle_path": str(candidate.path), "share": 1.0, "shadow": True},
        ],
        **extra,
    }
    r = client.post("/admin/experiments", json=body, headers=KEY)
    assert r.status_code == 201, r.text
    return r.json()


def _arm_of(client: TestClient, user: str) -> tuple[str | None, str]:
    r = client.post("/v1/recommend", json={"user_id": user, "k": 5})
    assert r.status_code == 200, r.text
    return r.json().get("arm"), r.json()["model_version"]


def test_admin_routes_need_the_key(env: None, bundle: Bundle, tmp_path: Path) -> None:
    with TestClient(create_app(_settings(tmp_path), bundle)) as client:
        assert client.get("/admin/experiments").status_code == 401
        wrong = client.post("/admin/experiments/x/rollback", json={}, headers={"X-API-Key": "no"})
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "unauthorized"
    with TestClient(create_app(_settings(tmp_path / "nokey", key=None), bundle)) as client:
        assert client.get("/admin/experiments", headers=KEY).status_code == 404


def test_arms_are_sticky_named_and_shadows_never_shown(
    client: TestClient, bundle: Bundle, candidate: Bundle, tmp_path: Path
) -> None:
    state = _create(client, candidate)
    assert state["candidates"][0]["model_version"] == candidate.version
    users = [str(u) for u in bundle.user_ids[:40]]
    experiment = client.app.state.arms.store.get("pop-vs-lgbm")  # type: ignore[attr-defined]
    seen = {}
    for user in users:
        arm, version = _arm_of(client, user)
        assert arm == assign(experiment, user).arm.name != "ghost"
        assert version == (candidate.version if arm == "pop" else bundle.version)
        seen[user] = arm
        assert _arm_of(client, user)[0] == arm  # sticky
    assert set(seen.values()) == {"pop", "control"}
    client.app.state.arms.close()  # type: ignore[attr-defined]  # drain the shadow lists
    client.app.state.decision_log.close()  # type: ignore[attr-defined]
    records = list(read_decisions(tmp_path / "decisions.jsonl"))
    shown = [r for r in records if not r["shadow"]]
    assert {r["arm"] for r in shown} == {"pop", "control"}
    assert all(r["model_version"] == candidate.version for r in shown if r["arm"] == "pop")
    shadows = [r for r in records if r["shadow"]]
    assert {r["arm"] for r in shadows} == {"ghost"} and len(shadows) == len(shown)


def test_another_worker_agrees_and_sees_the_ramp(
    env: None, client: TestClient, bundle: Bundle, candidate: Bundle, tmp_path: Path
) -> None:
    _create(client, candidate, share=0.1)
    users = [str(u) for u in bundle.user_ids[:40]]
    with TestClient(create_app(_settings(tmp_path), bundle)) as worker:
        # the other worker loads the arm's bundle off the request path: wait until it has
        worker.app.state.arms.load(client.app.state.arms.store.get("pop-vs-lgbm").arm("pop"))  # type: ignore[attr-defined]
        for share in (0.1, 0.5, 1.0):
            if share != 0.1:
                r = client.post(
                    "/admin/experiments/pop-vs-lgbm/ramp",
                    json={"arm": "pop", "share": share, "reason": "healthy"},
                    headers=KEY,
                )
                assert r.status_code == 200, r.text
            mine = [_arm_of(client, u)[0] for u in users]
            assert [_arm_of(worker, u)[0] for u in users] == mine
        assert set(mine) == {"pop"}


def test_promote_and_rollback(client: TestClient, bundle: Bundle, candidate: Bundle) -> None:
    _create(client, candidate, share=0.5)
    users = [str(u) for u in bundle.user_ids[:30]]
    bad = client.post(
        "/admin/experiments/pop-vs-lgbm/ramp", json={"arm": "x", "share": 0.2}, headers=KEY
    )
    assert (
        bad.status_code == 422 and "['control', 'pop', 'ghost']" in bad.json()["error"]["message"]
    )
    over = client.post(
        "/admin/experiments/pop-vs-lgbm/ramp", json={"arm": "pop", "share": 1.5}, headers=KEY
    )
    assert over.status_code == 422
    missing = client.post("/admin/experiments/nope/rollback", json={}, headers=KEY)
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "name"
    again = client.post(
        "/admin/experiments",
        headers=KEY,
        json={"name": "second", "candidates": [{"name": "b", "share": 0.1}]},
    )
    assert again.status_code == 409  # one experiment at a time
    r = client.post("/admin/experiments/pop-vs-lgbm/promote", json={"arm": "pop"}, headers=KEY)
    assert r.status_code == 200 and r.json()["status"] == "promoted"
    assert {_arm_of(client, u)[0] for u in users} == {"pop"}
    late = client.post("/admin/experiments/pop-vs-lgbm/rollback", json={}, headers=KEY)
    assert late.status_code == 409  # a promoted experiment is over


def test_rollback_returns_everyone_to_control(
    client: TestClient, bundle: Bundle, candidate: Bundle
) -> None:
    _create(client, candidate, share=1.0)
    users = [str(u) for u in bundle.user_ids[:20]]
    assert {_arm_of(client, u)[0] for u in users} == {"pop"}
    r = client.post("/admin/experiments/pop-vs-lgbm/rollback", json={"reason": "ctr"}, headers=KEY)
    assert r.status_code == 200 and r.json()["history"][-1]["reason"] == "ctr"
    # the experiment is over: the served bundle answers, outside any arm
    assert {_arm_of(client, u) for u in users} == {(None, bundle.version)}


def test_automatic_rollback_on_an_injected_regression(
    client: TestClient, bundle: Bundle, candidate: Bundle
) -> None:
    _create(client, candidate, share=0.5)
    arms = client.app.state.arms  # type: ignore[attr-defined]
    broken = arms.load(arms.store.get("pop-vs-lgbm").arm("pop"))

    def fail(inputs: Any) -> Any:
        raise RuntimeError("injected regression")

    object.__setattr__(broken.recommend, "run", fail)
    users = [str(u) for u in bundle.user_ids[:80]]
    codes = [client.post("/v1/recommend", json={"user_id": u, "k": 5}).status_code for u in users]
    assert 500 in codes and 200 in codes
    state = client.get("/admin/experiments/pop-vs-lgbm", headers=KEY).json()
    assert state["status"] == "rolled_back"
    assert state["history"][-1]["reason"].startswith("automatic: pop: error rate")
    assert {
        client.post("/v1/recommend", json={"user_id": u, "k": 5}).status_code for u in users
    } == {200}
    metrics = client.get("/metrics").text
    assert (
        'recsys_arm_rollbacks_total{arm="pop",experiment="pop-vs-lgbm",guardrail="error_rate"} 1.0'
        in metrics
    )
    assert 'recsys_arm_errors_total{arm="pop",experiment="pop-vs-lgbm"}' in metrics


def test_per_arm_series_count_requests_and_attributed_clicks(
    client: TestClient, bundle: Bundle, candidate: Bundle
) -> None:
    _create(client, candidate, share=0.5)
    user = str(bundle.user_ids[0])
    r = client.post("/v1/recommend", json={"user_id": user, "k": 5}).json()
    for n, event in enumerate(("click", "purchase")):
        e = {
            "event_id": f"e{n}",
            "user_id": user,
            "item_id": r["items"][1]["item_id"],
            "event": event,
            "request_id": r["request_id"],
            "position": 1,
            "value": 10.0,
        }
        assert client.post("/v1/events", json=e).status_code == 200
        assert client.post("/v1/events", json=e).json()["duplicate"]  # counted once
    metrics = client.get("/metrics").text
    labels = f'arm="{r["arm"]}",experiment="pop-vs-lgbm"'
    assert f"recsys_arm_clicks_total{{{labels}}} 2.0" in metrics
    assert f"recsys_arm_conversions_total{{{labels}}} 1.0" in metrics
    assert f"recsys_arm_value_total{{{labels}}} 10.0" in metrics
    endpoint = f'arm="{r["arm"]}",endpoint="recommend",experiment="pop-vs-lgbm"'
    assert f"recsys_arm_requests_total{{{endpoint}}} 1.0" in metrics
