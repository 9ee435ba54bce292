"""The shopping agent: tool registry rules, the ReAct loop's guards, memory, and /v1/chat."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from agents.agent import SYSTEM, AgentConfig, ShoppingAgent
from agents.compare import Comparer
from agents.layer import LLMLayer
from agents.llm import LLMClient
from agents.memory import SQLiteMemory
from agents.tools import Tool, ToolContext, ToolError, ToolRegistry, default_tools
from recsys.artifacts import Bundle
from serving.app import create_app
from serving.engine_port import ServedEngine
from serving.lists.service import ListDeps
from serving.metrics import ServingMetrics
from serving.settings import ServingSettings
from serving.state import Served


class Scripted:
    """A backend replaying fixed answers in order (the last one repeats)."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = [a if isinstance(a, str) else json.dumps(a) for a in answers]
        self.calls = 0

    def stream(self, messages: Any, schema: Any, max_tokens: int, temperature: float,
               deadline: float, purpose: str = "shared") -> Iterator[str]:  # fmt: skip
        self.calls += 1
        yield self.answers[min(self.calls - 1, len(self.answers) - 1)]

    def label_logprobs(self, prompt: str, labels: Any, deadline: float,
                       purpose: str = "shared") -> Any:  # fmt: skip
        """The next answer, a list of numbers, as the labels' scores."""
        self.calls += 1
        return np.asarray(json.loads(self.answers[min(self.calls - 1, len(self.answers) - 1)]),
                          dtype=float)[: len(labels)]  # fmt: skip

    def count(self, messages: Any) -> int:
        return 1


def act(tool: str, data: dict[str, Any], trust: int = 0) -> dict[str, Any]:
    return {"thought": "t", "action": {"tool": tool, "input": data, "job": "j",
                                       "trust_mode": trust}}  # fmt: skip


@pytest.fixture()
def served(shop_bundle: Bundle) -> Served:
    return Served.build(shop_bundle)


def leaf(served: Served) -> str:
    """A word the catalog surely matches: the first item's leaf category."""
    return str(served.bundle.items.category[0]).split(" > ")[-1].lower()  # type: ignore[index]


def context(served: Served, tmp_path: Path) -> ToolContext:
    """The tools as POST /v1/chat builds them: through the engine port, for an anonymous user."""
    llm = LLMClient(Scripted(["{}"]))
    engine = ServedEngine(served, ListDeps(ServingMetrics()), endpoint="chat")
    return ToolContext.over(engine, None, Comparer(llm, engine.catalog, 5.0))


def agent(answers: list[Any], tmp_path: Path, **config: Any) -> ShoppingAgent:
    memory = SQLiteMemory(tmp_path / "chat.sqlite")
    return ShoppingAgent(LLMClient(Scripted(answers), cache_size=0), default_tools(), memory,
                         AgentConfig(**config))  # fmt: skip


def run(a: ShoppingAgent, ctx: ToolContext, message: str, sid: str = "s1") -> dict[str, Any]:
    events = list(a.run(sid, message, ctx))
    assert events[-1]["event"] == "done" and events[-2]["event"] == "message"
    return {"steps": [e["data"] for e in events if e["event"] == "step"],
            **events[-2]["data"], "done": events[-1]["data"]}  # fmt: skip


def test_the_registry_refuses_bad_tools() -> None:
    class Bare(BaseModel):
        q: str  # no description

    class Good(BaseModel):
        q: str = Field(description="what")

    registry = ToolRegistry()
    registry.register(
        Tool("lookup_thing", "Looks a thing up in the catalog.", Good, lambda a, c: 1)
    )
    bad = [
        Tool("Bad Name", "Looks a thing up in the catalog.", Good, lambda a, c: 1),
        Tool("lookup_thing", "Looks a thing up in the catalog.", Good, lambda a, c: 1),
        Tool("short_desc", "Looks.", Good, lambda a, c: 1),
        Tool("bare_fields", "Looks a thing up in the catalog.", Bare, lambda a, c: 1),
        Tool("not_a_model", "Looks a thing up in the catalog.", dict, lambda a, c: 1),  # type: ignore[arg-type]
    ]
    for tool in bad:
        with pytest.raises(ToolError):
            registry.register(tool)
    assert sorted(default_tools().tools) == [
        "ask_user", "compare_items", "get_item", "recommend_for_user", "search_products"
    ]  # fmt: skip


def test_a_search_then_an_answer(served: Served, tmp_path: Path) -> None:
    ctx = context(served, tmp_path)
    a = agent([act("search_products", {"query": leaf(served), "k": 3}),
               act("final_answer", {"text": "Try these jackets."})], tmp_path)  # fmt: skip
    out = run(a, ctx, "I need one under 500")
    assert [s["tool"] for s in out["steps"]] == ["search_products", "final_answer"]
    assert out["text"] == "Try these jackets." and 0 < len(out["items"]) <= 3
    assert all(it["price"] <= 500 for it in out["items"])  # the stated budget applied
    assert out["degraded"] == []


def test_budget_fallback_ask_and_trust(served: Served, tmp_path: Path) -> None:
    ctx = context(served, tmp_path)
    looping = agent([act("get_item", {"item_id": "nope"})], tmp_path, max_steps=3)
    out = run(looping, ctx, "gift ideas please")
    assert out["degraded"] == ["step_budget"] and len(out["steps"]) == 3
    assert all(not s["ok"] for s in out["steps"]) and out["items"]  # fell back to a search
    broken = run(agent(["not json"], tmp_path), ctx, "gift ideas please", sid="s2")
    assert broken["degraded"] == ["llm_error"] and broken["items"]
    asked = run(agent([act("ask_user", {"question": "For whom is it?"})], tmp_path), ctx,
                "a gift", sid="s3")  # fmt: skip
    assert asked["text"] == "For whom is it?"
    trusted = run(agent([act("recommend_for_user", {"k": 2}, trust=1)], tmp_path), ctx,
                  "surprise me", sid="s4")  # fmt: skip
    assert len(trusted["steps"]) == 1 and len(trusted["items"]) == 2


def test_a_spent_deadline_ends_the_turn_with_the_fallback(served: Served, tmp_path: Path) -> None:
    ctx = context(served, tmp_path)
    out = run(agent([act("get_item", {"item_id": "nope"})], tmp_path, deadline_s=0.0), ctx,
              "gift ideas please", sid="late")  # fmt: skip
    assert out["steps"] == [] and out["degraded"] == ["deadline"] and out["items"]


def test_memory_keeps_constraints_and_the_trace(served: Served, tmp_path: Path) -> None:
    ctx = context(served, tmp_path)
    a = agent([act("search_products", {"query": leaf(served)}),
               act("final_answer", {"text": "ok"})], tmp_path)  # fmt: skip
    run(a, ctx, "my budget: nothing over 40", sid="m")
    b = agent([act("search_products", {"query": leaf(served), "k": 10}),
               act("final_answer", {"text": "ok"})], tmp_path)  # fmt: skip
    out = run(b, ctx, "something else?", sid="m")
    assert all(it["price"] <= 40 for it in out["items"])  # the first turn's budget
    memory = SQLiteMemory(tmp_path / "chat.sqlite")
    assert memory.state("m")["constraints"] == {"price_max": 40.0}
    assert [t["role"] for t in memory.turns("m")] == ["user", "assistant"] * 2
    events = [e["event"] for e in memory.trace("m")]
    assert events == ["step", "step", "message", "done"] * 2


def test_redis_memory(redis_port: int) -> None:
    from agents.memory import open_memory

    memory = open_memory(f"redis://127.0.0.1:{redis_port}/0")
    memory.add_turn("r", "user", "hello")
    memory.set_state("r", {"constraints": {"price_max": 9.0}, "shown": ["a"]})
    memory.add_trace("r", {"event": "done"})
    again = open_memory(f"redis://127.0.0.1:{redis_port}/0")  # another replica
    assert again.turns("r") == [{"role": "user", "content": "hello"}]
    assert again.state("r")["constraints"] == {"price_max": 9.0}
    assert again.trace("r") == [{"event": "done"}]


def test_chat_streams_with_the_real_model(
    llm: LLMClient, shop_bundle: Bundle, tmp_path: Path
) -> None:
    settings = ServingSettings(
        bundle_path=tmp_path / "none", events_path=tmp_path / "e.sqlite",
        decision_log_path=None, load_on_start=False, chat_memory=str(tmp_path / "c.sqlite"),
    )  # fmt: skip
    app = create_app(settings, shop_bundle, llm=LLMLayer(client=llm))
    app.state.chat.config = AgentConfig(max_steps=3, deadline_s=90.0, step_timeout_s=40.0)
    client = TestClient(app)
    body = {"session_id": "real-1", "message": "I want a warm jacket under 200"}
    with client.stream("POST", "/v1/chat", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kinds = [line.split(": ", 1)[1] for line in r.iter_lines() if line.startswith("event:")]
        token = r.headers["X-Session-Token"]
    assert kinds[-2:] == ["message", "done"] and kinds.count("step") <= 3
    trace = client.get("/v1/chat/real-1/trace", headers={"X-Session-Token": token})
    trace = trace.json()["events"]
    assert trace[-1]["event"] == "done" and trace[-2]["event"] == "message"
    # the agent's tools, or what the router ran directly for a confidently parsed turn
    tools = {"search_products", "recommend_for_user", "get_item", "compare_items", "ask_user",
             "final_answer", "guide", "none"}  # fmt: skip
    assert all(e["data"]["tool"] in tools for e in trace if e["event"] == "step")
    assert SYSTEM[:40] not in json.dumps(trace[-2]["data"])
