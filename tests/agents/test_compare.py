"""Grounded comparison: the checker on known claims, then the real model behind /v1/compare."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from agents.compare import Comparer, check_claims, item_facts, prompt_order, worded
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


def test_picked_claims_are_worded_from_the_facts() -> None:
    facts = {k: {**v, "title": f"Item {k}"} for k, v in FACTS.items()}
    raw = {"claims": [
        {"item_id": "a", "attribute": "price"},
        {"item_id": "b", "attribute": "colour"},
        {"item_id": "b", "attribute": "weight"},  # the facts cannot word it: flagged
    ]}  # fmt: skip
    checked = check_claims(worded(raw, facts), facts)
    texts = [c.text for c in checked.supported]
    assert texts == ["Item a: price $20.00", "Item b: colour blue, navy"]
    assert [c.value for c in checked.supported] == ["20.0", "blue"]
    assert [why for _, why in checked.flagged] == ["the catalog has no 'weight' for this item"]


def test_the_small_in_process_model_picks_and_a_served_one_words(shop_bundle: Bundle) -> None:
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    ids = [str(i) for i in shop_bundle.item_ids[:2]]
    small = Comparer(Named("llama_cpp"), shop_bundle.items)  # type: ignore[arg-type]
    served = Comparer(Named("openai"), shop_bundle.items)  # type: ignore[arg-type]
    facts = small.facts(ids)
    claim = small.schema(facts)["properties"]["claims"]["items"]
    assert claim["required"] == ["item_id", "attribute"]
    claim = served.schema(facts)["properties"]["claims"]["items"]
    assert claim["required"] == ["item_id", "attribute", "value", "text"]
    named: Any = Named("llama_cpp")
    forced = Comparer(named, shop_bundle.items, wording="model")
    assert forced.worded_by_model and not small.worded_by_model


def _client(bundle: Bundle, tmp: Path, llm: LLMClient) -> TestClient:
    settings = ServingSettings(bundle_path=tmp / "none", events_path=tmp / "e.sqlite",
                               decision_log_path=None, load_on_start=False)  # fmt: skip
    layer = LLMLayer(client=llm)
    layer.compare_timeout_s = 120.0  # a correctness test, on a shared 2-core machine
    return TestClient(create_app(settings, bundle, llm=layer))


LONG = 120.0  # a correctness test, on a shared 2-core machine: the model's time is not tested


def _check(body: dict[str, Any], shop_bundle: Bundle) -> None:
    """Every claim re-checks against the catalog; a flagged timeout is an allowed outcome."""
    assert body["degraded"] in ([], ["llm_timeout"])
    if body["degraded"]:
        assert body["claims"] == [] and body["flagged"] == []
    index = {str(i): n for n, i in enumerate(shop_bundle.item_ids)}
    for claim in body["claims"]:
        facts = item_facts(shop_bundle.items, index[claim["item_id"]])
        assert check_claims({"claims": [claim]}, {claim["item_id"]: facts}).supported
        assert claim["citation"] == f"[{claim['item_id']}.{claim['attribute']}]"
    assert all(f["why"] for f in body["flagged"])


def test_the_prompt_order_is_not_the_callers() -> None:
    ids = [f"i{n}" for n in range(40)]
    triples = [ids[n : n + 3] for n in range(0, 38)]
    for t in triples:  # a function of the set and the question: any request order, one prompt
        order = prompt_order(t, "q")
        assert order == prompt_order(t[::-1], "q") == prompt_order(t[1:] + t[:1], "q")
        assert sorted(order) == sorted(t)
    first = sum(prompt_order(t, "q")[0] == t[0] for t in triples)
    assert first < len(triples) * 0.6  # the caller's first item is not the prompt's first


def test_the_prompt_is_the_same_in_any_request_order(shop_bundle: Bundle) -> None:
    comparer = Comparer(None, shop_bundle.items, wording="facts")  # type: ignore[arg-type]
    ids = [str(i) for i in shop_bundle.item_ids[:3]]
    ab = comparer.messages(comparer.facts(ids), "which is warmer?")
    ba = comparer.messages(comparer.facts(ids[::-1]), "which is warmer?")
    assert ab == ba
    assert comparer.schema(comparer.facts(ids)) == comparer.schema(comparer.facts(ids[::-1]))


def test_compare_returns_only_supported_claims(
    llm: LLMClient, shop_bundle: Bundle, tmp_path: Path
) -> None:
    client = _client(shop_bundle, tmp_path, llm)
    ids = [str(i) for i in shop_bundle.item_ids[:3]]
    ask = {"question": "which is cheapest?", "deadline_s": LONG}
    r = client.post("/v1/compare", json={"item_ids": ids, **ask})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["facts"]["price"]) == set(ids)
    _check(body, shop_bundle)
    # the same items in another order: the same prompt, so the same claims (position never
    # picks the winner), unless one of the two was late
    again = client.post("/v1/compare", json={"item_ids": ids[::-1], **ask}).json()
    _check(again, shop_bundle)
    assert again["facts"] == body["facts"]
    if not body["degraded"] and not again["degraded"]:
        assert again["claims"] == body["claims"]
    category = str(shop_bundle.items.category[0]).split(" > ")[0]  # type: ignore[index]
    guide = client.post("/v1/compare", json={"category": category, "deadline_s": LONG}).json()
    assert guide["degraded"] in ([], ["llm_timeout"]) and "price" in guide["facts"]
    assert all(t["attribute"] in guide["facts"] for t in guide["claims"])


def _events(client: TestClient, body: dict[str, Any], **kw: Any) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    with client.stream("POST", "/v1/compare", json=body, **kw) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                out.append((name, json.loads(line[6:])))
    return out


def test_the_stream_sends_the_facts_first(
    llm: LLMClient, shop_bundle: Bundle, tmp_path: Path
) -> None:
    client = _client(shop_bundle, tmp_path, llm)
    ids = [str(i) for i in shop_bundle.item_ids[3:5]]
    plain = client.post("/v1/compare", json={"item_ids": ids, "deadline_s": 0.001}).json()
    events = _events(client, {"item_ids": ids, "stream": True, "deadline_s": LONG})
    assert [name for name, _ in events] == ["facts", "claims", "done"]
    assert events[0][1]["facts"] == plain["facts"]  # the catalog's table, the JSON one's
    assert events[0][1]["model_version"] == shop_bundle.version
    _check({**events[1][1], **events[2][1]}, shop_bundle)
    # past its deadline the stream still has the facts, and says why the claims are missing
    late = _events(client, {"item_ids": ids, "question": "late?", "deadline_s": 0.001},
                   headers={"Accept": "text/event-stream"})  # fmt: skip
    assert late[0][1]["facts"] == plain["facts"]
    assert late[1][1] == {"claims": [], "flagged": []}
    assert late[2][1]["degraded"] in (["llm_timeout"], [])  # [] only from the client's cache
    assert plain["degraded"] in (["llm_timeout"], [])


def test_compare_refuses_bad_input(llm: LLMClient, shop_bundle: Bundle, tmp_path: Path) -> None:
    client = _client(shop_bundle, tmp_path, llm)
    first = str(shop_bundle.item_ids[0])
    error = assert_error(
        client.post("/v1/compare", json={"item_ids": [first, "no-such"]}), 422, "item_ids"
    )
    assert "'no-such'" in error["message"]
    streamed = client.post("/v1/compare", json={"item_ids": [first, "no-such"], "stream": True})
    assert "'no-such'" in assert_error(streamed, 422, "item_ids")["message"]  # before any event
    assert_error(client.post("/v1/compare", json={"question": "hm"}), 422)
    assert_error(client.post("/v1/compare", json={"item_ids": [first]}), 422, "item_ids")
