"""Grounded comparison: the checker on known claims, then the real model behind /v1/compare."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from agents.compare import check_claims, item_facts
from agents.layer import LLMLayer
from agents.llm import LLMClient
from recsys.artifacts import Bundle
from serving.app import create_app
from serving.settings import ServingSettings
from tests.serving.conftest import assert_error

FACTS = {
    "a": {"item_id": "a", "price": 20.0, "colour": "red", "brand": "Acme"},
    "b": {"item_id": "b", "price": 35.5, "colour": ["blue", "navy"], "brand": "Bolt"},
}


def test_the_checker_keeps_only_what_the_catalog_says() -> None:
    raw = {"claims": [
        {"item_id": "a", "attribute": "price", "value": "$20", "text": "a costs 20"},
        {"item_id": "b", "attribute": "colour", "value": "Navy", "text": "b comes in navy"},
        {"item_id": "a", "attribute": "colour", "value": "green", "text": "a is green"},
        {"item_id": "c", "attribute": "price", "value": "1", "text": "c is cheap"},
        {"item_id": "b", "attribute": "weight", "value": "2kg", "text": "b weighs 2kg"},
        "not a claim",
    ]}  # fmt: skip
    checked = check_claims(raw, FACTS)
    assert [(c.item_id, c.attribute) for c in checked.supported] == [
        ("a", "price"),
        ("b", "colour"),
    ]
    assert checked.supported[0].cite() == "[a.price]"
    why = {c.text: reason for c, reason in checked.flagged}
    assert why["a is green"] == "the catalog says 'red'"
    assert why["c is cheap"] == "names an item outside the comparison"
    assert "no 'weight'" in why["b weighs 2kg"]
    assert check_claims({"claims": "nonsense"}, FACTS).supported == []


def _client(bundle: Bundle, tmp: Path, llm: LLMClient) -> TestClient:
    settings = ServingSettings(bundle_path=tmp / "none", events_path=tmp / "e.sqlite",
                               decision_log_path=None, load_on_start=False)  # fmt: skip
    layer = LLMLayer(client=llm)
    layer.compare_timeout_s = 120.0  # a correctness test, on a shared 2-core machine
    return TestClient(create_app(settings, bundle, llm=layer))


def test_compare_returns_only_supported_claims(
    llm: LLMClient, shop_bundle: Bundle, tmp_path: Path
) -> None:
    client = _client(shop_bundle, tmp_path, llm)
    ids = [str(i) for i in shop_bundle.item_ids[:3]]
    r = client.post("/v1/compare", json={"item_ids": ids, "question": "which is cheapest?"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["degraded"] == [] and set(body["facts"]["price"]) == set(ids)
    index = {str(i): n for n, i in enumerate(shop_bundle.item_ids)}
    for claim in body["claims"]:  # every claim re-checks against the catalog
        facts = item_facts(shop_bundle.items, index[claim["item_id"]])
        assert check_claims({"claims": [claim]}, {claim["item_id"]: facts}).supported
        assert claim["citation"] == f"[{claim['item_id']}.{claim['attribute']}]"
    assert all(f["why"] for f in body["flagged"])
    category = str(shop_bundle.items.category[0]).split(" > ")[0]  # type: ignore[index]
    guide = client.post("/v1/compare", json={"category": category}).json()
    assert guide["degraded"] == [] and "price" in guide["facts"]
    assert all(t["attribute"] in guide["facts"] for t in guide["claims"])


def test_compare_refuses_bad_input(llm: LLMClient, shop_bundle: Bundle, tmp_path: Path) -> None:
    client = _client(shop_bundle, tmp_path, llm)
    first = str(shop_bundle.item_ids[0])
    error = assert_error(
        client.post("/v1/compare", json={"item_ids": [first, "no-such"]}), 422, "item_ids"
    )
    assert "'no-such'" in error["message"]
    assert_error(client.post("/v1/compare", json={"question": "hm"}), 422)
    assert_error(client.post("/v1/compare", json={"item_ids": [first]}), 422, "item_ids")
