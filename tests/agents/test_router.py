"""The chat router on the real served pipeline, with no LLM: understanding and tools alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from agents.layer import LLMLayer
from agents.llm import LLMSettings
from agents.memory import SQLiteMemory
from recsys.artifacts import Bundle
from serving.app import create_app
from serving.chat.protocol import ChatRequest
from serving.chat.service import ChatService
from serving.engine_port import ServedEngine
from serving.lists.service import ListDeps
from serving.metrics import ServingMetrics
from serving.settings import ServingSettings
from serving.state import Served


def _events(lines: list[str]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in lines:
        head, data = block.strip().split("\n", 1)
        out.append((head.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


@pytest.fixture()
def chat(shop_bundle: Bundle, tmp_path: Path) -> Any:
    service = ChatService(SQLiteMemory(tmp_path / "chat.sqlite"))
    engine = ServedEngine(Served.build(shop_bundle), ListDeps(ServingMetrics()), "chat")
    no_llm = LLMLayer(LLMSettings(model_path=tmp_path / "none.gguf"))

    def say(message: str, session: str = "s1") -> dict[str, Any]:
        events = _events(list(service.stream(engine, no_llm, ChatRequest(
            session_id=session, message=message))))  # fmt: skip
        kinds = [k for k, _ in events]
        assert kinds[-1] == "done" and "message" in kinds, kinds
        turn = {k: d for k, d in events}
        turn["observed"] = {i for k, d in events if k == "step" for i in d.get("observation", [])}
        return turn

    return say


def _pick(bundle: Bundle) -> tuple[str, float, str]:
    """A leaf with in-stock items, a budget inside its prices, and a colour among them."""
    items = bundle.items
    leaves = np.asarray(items.category, dtype=object)
    prices = np.asarray(items.price, dtype=float)
    stock = np.asarray(items.in_stock, dtype=bool)
    for leaf in sorted(set(leaves), key=lambda c: -(leaves == c).sum()):
        idx = np.flatnonzero((leaves == leaf) & stock)
        if len(idx) < 6:
            continue
        budget = float(np.percentile(prices[idx], 70))
        cheap = idx[prices[idx] <= budget]
        colours = [json.loads(items.attributes[i]).get("colour") for i in cheap]
        common = max(set(colours) - {None}, key=colours.count, default=None)
        if common and colours.count(common) >= 2:
            return str(leaf), round(budget), str(common)
    pytest.skip("the shop has no leaf with enough priced, coloured items")


def test_find_refine_compare_cheaper_without_an_llm(chat: Any, shop_bundle: Bundle) -> None:
    leaf, budget, colour = _pick(shop_bundle)
    items = shop_bundle.items
    index = items.index
    noun = leaf.split(" > ")[-1].lower()

    first = chat(f"I'm looking for {noun} under {budget}")
    shown = [i["item_id"] for i in first["message"]["items"]]
    assert shown and first["done"]["path"] == "direct"
    assert first["message"]["degraded"] == ["llm_unavailable"] and first["message"]["notes"]
    for item in shown:
        assert items.price[index[item]] <= budget and str(items.category[index[item]]) == leaf

    second = chat(f"only {colour} ones please")
    refined = [i["item_id"] for i in second["message"]["items"]]
    assert refined
    for item in refined:
        assert json.loads(items.attributes[index[item]])["colour"] == colour
        assert items.price[index[item]] <= budget

    third = chat("compare the first two")
    assert third["step"]["tool"] == "compare_items"
    assert third["step"]["input"]["item_ids"] == refined[:2]

    fourth = chat("anything cheaper?")
    cheaper = [i["item_id"] for i in fourth["message"]["items"]]
    before = [items.price[index[i]] for i in refined[:2]]
    assert all(items.price[index[i]] < max(before) for i in cheaper)

    for turn in (first, second, third, fourth):  # only ids a tool returned reach the shopper
        assert {i["item_id"] for i in turn["message"]["items"]} <= turn["observed"]


def test_greeting_guidance_and_a_question_about_an_item(chat: Any, shop_bundle: Bundle) -> None:
    leaf, budget, _ = _pick(shop_bundle)
    noun = leaf.split(" > ")[-1].lower()
    assert chat("hello")["message"]["items"] == []
    guide = chat(f"what should I look for when buying {noun}?")
    assert guide["step"]["tool"] == "guide" and "price" in guide["message"]["text"]
    chat(f"{noun} under {budget}")
    answer = chat("what colour is the second one?")
    assert answer["step"]["tool"] == "get_item" and "colour" in answer["message"]["text"]


def test_a_huge_budget_is_refused_not_infinite(chat: Any, shop_bundle: Bundle) -> None:
    leaf, _, _ = _pick(shop_bundle)
    turn = chat(f"{leaf.split(' > ')[-1].lower()} under 9{'9' * 400}")
    assert "price_max" not in turn["step"]["input"]


def test_chat_over_http_without_an_llm_answers_with_products(
    shop_bundle: Bundle, tmp_path: Path
) -> None:
    settings = ServingSettings(
        bundle_path=tmp_path / "none", events_path=tmp_path / "e.sqlite",
        decision_log_path=tmp_path / "d.jsonl", load_on_start=False,
        chat_memory=str(tmp_path / "chat.sqlite"),
    )  # fmt: skip
    app = create_app(settings, shop_bundle, llm=LLMLayer(LLMSettings(model_path=tmp_path / "x")))
    client = TestClient(app)
    leaf, budget, _ = _pick(shop_bundle)
    body = {"session_id": "h1", "message": f"{leaf.split(' > ')[-1].lower()} under {budget}"}
    with client.stream("POST", "/v1/chat", json=body) as reply:
        text = "".join(reply.iter_text())
    events = _events([b for b in text.split("\n\n") if b.strip()])
    kinds = [k for k, _ in events]
    assert "error" not in kinds and kinds[-1] == "done"
    message = dict(events)["message"]
    assert message["items"] and message["degraded"] == ["llm_unavailable"]
    assert 'endpoint="chat_search"' in client.get("/metrics").text  # counted like any caller


def test_a_session_belongs_to_the_caller_that_started_it(
    shop_bundle: Bundle, tmp_path: Path
) -> None:
    settings = ServingSettings(
        bundle_path=tmp_path / "none", events_path=tmp_path / "e.sqlite",
        decision_log_path=None, load_on_start=False, chat_memory=str(tmp_path / "chat.sqlite"),
    )  # fmt: skip
    app = create_app(settings, shop_bundle, llm=LLMLayer(LLMSettings(model_path=tmp_path / "x")))
    client = TestClient(app)

    def turn(**body: Any) -> Any:
        return client.post("/v1/chat", json={"session_id": "own-1", "message": "hello", **body})

    first = turn()
    token = first.headers["X-Session-Token"]
    done = _events([b for b in first.text.split("\n\n") if b.strip()])[-1][1]
    assert done["session_token"] == token
    for bad in ({}, {"session_token": "not-the-token"}):  # someone who knows only the id
        refused = turn(**bad)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["param"] == "session_token"
    assert turn(session_token=token).status_code == 200
    assert "X-Session-Token" not in turn(session_token=token).headers  # issued once
    assert client.get("/v1/chat/own-1/trace").status_code == 403
    assert client.get("/v1/chat/own-1/trace", headers={"X-Session-Token": "wrong-token"}).json()[
        "error"
    ]["type"] == "forbidden"
    trace = client.get("/v1/chat/own-1/trace", headers={"X-Session-Token": token}).json()
    assert trace["events"] and token not in str(trace)  # the trace never stores the token
