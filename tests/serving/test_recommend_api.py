"""POST /v1/recommend and /v1/rank on a real bundle: known and cold users, validation, ranking
caller-supplied items."""

from __future__ import annotations

import dataclasses
import itertools
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle
from serving.app import create_app
from serving.settings import ServingSettings
from tests.serving.conftest import CANDIDATES, assert_error


def _user(bundle: Bundle, row: int = 0) -> str:
    return str(bundle.user_ids[row])


def _descending(items: list[dict[str, Any]]) -> bool:
    scores = [it["score"] for it in items]
    return all(a >= b for a, b in itertools.pairwise(scores))


def test_recommend_known_user(client: TestClient, bundle: Bundle) -> None:
    r = client.post("/v1/recommend", json={"user_id": _user(bundle), "k": 7})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == bundle.version
    assert body["user_id"] == _user(bundle) and body["cold_start"] is False
    assert body["ranker"] == "lightgbm"
    assert len(body["items"]) == 7 and _descending(body["items"])
    assert len({it["item_id"] for it in body["items"]}) == 7
    assert set(bundle.item_ids) >= {it["item_id"] for it in body["items"]}
    assert "trace" not in body
    assert all(set(it) == {"item_id", "position", "score"} for it in body["items"])


def test_recommend_explain_and_trace(client: TestClient, bundle: Bundle) -> None:
    body = client.post(
        "/v1/recommend", json={"user_id": _user(bundle, 3), "explain": True, "trace": True}
    ).json()
    assert len(body["items"]) == 10  # the default k
    assert set(body["trace"]) == {"history", "retrieval", "ranking", "decision"}
    assert all(ms >= 0 for ms in body["trace"].values())
    names = set(bundle.retriever.names)
    for item in body["items"]:
        *why, tag = item["reasons"]
        assert why, item  # shopper-facing reasons come before the sources tag
        assert tag.startswith("sources: ")
        assert set(tag.removeprefix("sources: ").split(", ")) <= names


def test_unknown_user_gets_the_cold_start_answer(client: TestClient) -> None:
    r = client.post("/v1/recommend", json={"user_id": "never-seen", "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["cold_start"] is True and len(body["items"]) == 5 and _descending(body["items"])


def test_k_beyond_the_candidates_returns_them_all(client: TestClient, bundle: Bundle) -> None:
    body = client.post("/v1/recommend", json={"user_id": _user(bundle), "k": 500}).json()
    assert 0 < len(body["items"]) <= CANDIDATES


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"user_id": "u1", "k": 0}, "k"),
        ({"user_id": "u1", "k": 501}, "k"),
        ({"user_id": "u1", "k": "x"}, "k"),
        ({"k": 3}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": 12}, "user_id"),
        ({"user_id": "u1", "explian": True}, "explian"),
    ],
)
def test_malformed_recommend_bodies(client: TestClient, payload: Any, param: str) -> None:
    error = assert_error(client.post("/v1/recommend", json=payload), 422, param)
    assert error["type"] == "invalid_request" and param in error["message"]


def test_a_body_that_is_not_json(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    r = client.post("/v1/recommend", content=b"{not json", headers=headers)
    assert_error(r, 422, None)


def test_rank_reports_unknown_ids_and_ranks_the_known(client: TestClient, bundle: Bundle) -> None:
    given = [str(i) for i in bundle.item_ids[:30]]
    asked = [*given[:10], "no-such-item", *given[10:], given[0], "nor-this"]
    payload = {"user_id": _user(bundle, 5), "item_ids": asked, "explain": True}
    r = client.post("/v1/rank", json=payload)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["unknown_item_ids"] == ["no-such-item", "nor-this"]
    returned = [it["item_id"] for it in body["items"]]
    assert sorted(returned) == sorted(given)  # every known item once, nothing else
    assert _descending(body["items"]) and body["ranker"] == "lightgbm"
    assert body["cold_start"] is False and body["model_version"] == bundle.version
    assert all(it["reasons"][-1].startswith("sources: ") for it in body["items"])
    top = client.post("/v1/rank", json={"user_id": _user(bundle, 5), "item_ids": given, "k": 4})
    assert [it["item_id"] for it in top.json()["items"]] == returned[:4]


def test_rank_reproduces_the_pipeline_on_its_own_candidates(
    client: TestClient, bundle: Bundle
) -> None:
    """Given exactly the merged candidates, /v1/rank builds the same rows as the pipeline."""
    user = _user(bundle, 7)
    everything = {"in_stock": False, "exclude_purchased": False}  # every merged candidate
    rec = client.post(
        "/v1/recommend", json={"user_id": user, "k": 500, "filters": everything}
    ).json()["items"]
    shuffled = [it["item_id"] for it in rec]
    random.Random(0).shuffle(shuffled)
    ranked = client.post("/v1/rank", json={"user_id": user, "item_ids": shuffled}).json()["items"]
    assert [it["item_id"] for it in ranked] == [it["item_id"] for it in rec]
    assert [it["score"] for it in ranked] == pytest.approx([it["score"] for it in rec], abs=1e-5)


def test_rank_without_user_and_with_only_unknown_ids(client: TestClient, bundle: Bundle) -> None:
    given = [str(i) for i in bundle.item_ids[:5]]
    body = client.post("/v1/rank", json={"item_ids": given, "trace": True}).json()
    assert body["cold_start"] is True and body["user_id"] is None
    assert sorted(it["item_id"] for it in body["items"]) == sorted(given)
    assert set(body["trace"]) == {"history", "candidates", "ranking", "decision"}
    none = client.post("/v1/rank", json={"item_ids": ["x", "y"]}).json()
    assert none["items"] == [] and none["unknown_item_ids"] == ["x", "y"]


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"item_ids": []}, "item_ids"),
        ({"item_ids": ["a"] * 1001}, "item_ids"),
        ({"item_ids": ["a", 3]}, "item_ids[1]"),
        ({"user_id": "u1"}, "item_ids"),
        ({"item_ids": ["a"], "k": 0}, "k"),
    ],
)
def test_malformed_rank_bodies(client: TestClient, payload: Any, param: str) -> None:
    assert_error(client.post("/v1/rank", json=payload), 422, param)


def test_a_bundle_without_ranker_answers_in_merged_order(
    bundle: Bundle, settings: ServingSettings
) -> None:
    app = create_app(settings, dataclasses.replace(bundle, ranking=None))
    client = TestClient(app)
    body = client.post("/v1/recommend", json={"user_id": _user(bundle), "k": 20}).json()
    assert body["ranker"] is None and len(body["items"]) == 20 and _descending(body["items"])
    given = [str(i) for i in bundle.item_ids]  # the whole catalog: some no source found
    ranked = client.post(
        "/v1/rank", json={"user_id": _user(bundle), "item_ids": given, "explain": True}
    ).json()["items"]
    assert sorted(it["item_id"] for it in ranked) == sorted(given) and _descending(ranked)
    unfound = [it for it in ranked if it["reasons"][-1] == "sources: none (ranked as given)"]
    assert unfound and all(it["score"] == 0.0 for it in unfound)
    assert ranked[-len(unfound) :] == unfound  # after every item a source found
    unfound_ids = {it["item_id"] for it in unfound}
    assert [it["item_id"] for it in unfound] == [i for i in given if i in unfound_ids]
    metrics = client.get("/metrics").text
    assert 'recsys_fallbacks_total{endpoint="recommend",reason="no_ranker"} 1.0' in metrics
    assert 'recsys_fallbacks_total{endpoint="rank",reason="no_ranker"} 1.0' in metrics
