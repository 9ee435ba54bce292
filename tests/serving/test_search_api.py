"""POST /v1/search, and the decision layer (filters, decision log) behind the list endpoints."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from recsys.artifacts import Bundle
from serving.settings import ServingSettings
from tests.serving.conftest import assert_error


def _post(client: TestClient, path: str, **body: Any) -> dict[str, Any]:
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_search_finds_the_category_it_names(client: TestClient, bundle: Bundle) -> None:
    leaves = Counter(bundle.items.category)  # type: ignore[arg-type]
    for path, size in leaves.most_common(3):
        leaf = path.split(" > ")[-1]
        body = _post(client, "/v1/search", query=leaf.lower(), k=5, explain=True, trace=True)
        cats = [bundle.items.category[list(bundle.item_ids).index(it["item_id"])]  # type: ignore[index]
                for it in body["items"]]  # fmt: skip
        assert len(cats) == min(5, size)
        assert all(c == path for c in cats), (leaf, cats)
        assert body["sources"] == ["lexical"] and body["matched_terms"] >= 1
        assert set(body["trace"]) == {"query_retrieval", "decision"}
        why = [f"matches your search '{leaf.lower()}'", "sources: lexical"]
        assert all(it["reasons"] == why for it in body["items"])


def test_search_without_a_lexical_match_is_empty_not_an_error(client: TestClient) -> None:
    body = _post(client, "/v1/search", query="zzzqqq xxyyzz")
    assert body["items"] == [] and body["matched_terms"] == 0


def test_filters_apply_to_search_and_recommend(client: TestClient, bundle: Bundle) -> None:
    price = bundle.items.price
    assert price is not None
    top_category = str(bundle.items.category[0]).split(" > ")[0]  # type: ignore[index]
    inside = bundle.items.category_mask(top_category)
    cap = float(np.median(price[inside]))  # about half of that category's items pass
    index = {str(i): n for n, i in enumerate(bundle.item_ids)}
    for path, body in (
        ("/v1/recommend", {"user_id": str(bundle.user_ids[2])}),
        ("/v1/search", {"query": top_category.lower()}),
    ):
        filters = {"price_max": cap, "categories": [top_category]}
        got = _post(client, path, **body, k=20, filters=filters, explain=True)
        assert got["items"], path
        for item in got["items"]:
            n = index[item["item_id"]]
            assert price[n] <= cap and str(bundle.items.category[n]).startswith(top_category)  # type: ignore[index]
            assert bool(bundle.items.in_stock[n])  # type: ignore[index]
        removed = [d for d in got["decisions"] if d["action"] == "removed"]
        assert removed and all(d["reason"] for d in removed)
        shown = [d for d in got["decisions"] if d["action"] == "shown"]
        assert [d["item_id"] for d in shown] == [it["item_id"] for it in got["items"]]
        assert [d["position"] for d in shown] == list(range(len(shown)))


def test_bad_filters_get_422_naming_the_field(client: TestClient) -> None:
    cases = [
        ({"brands": ["No Such Brand"]}, "filters.brands", "'No Such Brand'"),
        ({"categories": ["Garden > Gnomes"]}, "filters.categories", "top-level categories"),
        ({"price_min": 50, "price_max": 5}, "filters.price_min", "above filters.price_max"),
    ]
    for filters, param, needle in cases:
        for path, body in (("/v1/recommend", {"user_id": "u1"}), ("/v1/search", {"query": "a"})):
            error = assert_error(client.post(path, json={**body, "filters": filters}), 422, param)
            assert needle in error["message"]
    error = assert_error(
        client.post("/v1/recommend", json={"user_id": "u", "filters": {"price_max": -1}}),
        422,
        "filters.price_max",
    )
    assert "greater than or equal to 0" in error["message"]
    assert_error(
        client.post("/v1/search", json={"query": "a", "filters": {"colour": "red"}}),
        422,
        "filters.colour",
    )


def test_every_list_is_in_the_decision_log(bundle: Bundle, settings: ServingSettings) -> None:
    from serving.app import create_app

    with TestClient(create_app(settings, bundle)) as client:  # shutdown flushes the log
        rec = _post(client, "/v1/recommend", user_id=str(bundle.user_ids[0]), request_id="r-1")
        _post(client, "/v1/search", query="jacket", request_id="s-1", k=3)
    path = settings.decision_log_path
    assert isinstance(path, Path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["request_id"] for r in records] == ["r-1", "s-1"]
    assert [s["item_id"] for s in records[0]["shown"]] == [it["item_id"] for it in rec["items"]]
    assert all(s["propensity"] == 1.0 for s in records[0]["shown"])  # no exploration configured
    assert records[0]["model_version"] == bundle.version and records[1]["endpoint"] == "search"


def test_the_example_rules_serve(bundle: Bundle, settings: ServingSettings) -> None:
    from serving.app import create_app

    example = Path(__file__).resolve().parents[2] / "serving" / "decision.example.yaml"
    ruled = settings.model_copy(update={"decision_config": example})
    client = TestClient(create_app(ruled, bundle))
    user = str(bundle.user_ids[3])
    seen = set()
    for n in range(20):
        body = _post(client, "/v1/recommend", user_id=user, k=10, request_id=f"x{n}", explain=True)
        shown = [d for d in body["decisions"] if d["action"] == "shown"]
        assert len(shown) == 10 and all(0 < d["propensity"] <= 1 for d in shown)
        seen |= {d["reason"].split(";")[0] for d in shown}
        index = {str(i): k for k, i in enumerate(bundle.item_ids)}
        cats = Counter(str(bundle.items.category[index[d["item_id"]]]) for d in shown)  # type: ignore[index]
        assert max(cats.values()) <= 3  # max_per_leaf
        assert sum(v for c, v in cats.items() if c.startswith("Fashion")) <= 4  # category cap
    assert {"ranked", "exploration (epsilon-greedy draw)"} <= seen  # epsilon 0.05 over 200 slots
