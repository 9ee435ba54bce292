"""The shopping agent over the served bundle: tools bound to the pipelines, events as SSE."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from agents.agent import AgentConfig, ShoppingAgent
from agents.compare import Comparer
from agents.layer import LLMLayer
from agents.llm import LLMError
from agents.memory import SessionMemory
from agents.tools import ToolContext, default_tools
from recsys.decision import DecisionRequest, Filters
from serving.chat.protocol import ChatRequest
from serving.state import Served

ANONYMOUS = ""


class ChatService:
    def __init__(self, memory: SessionMemory, config: AgentConfig | None = None) -> None:
        self.memory = memory
        self.config = config or AgentConfig()
        self.tools = default_tools()  # checked here, at start-up
        self._agent: ShoppingAgent | None = None
        self._lock = threading.Lock()

    def agent(self, llm: LLMLayer) -> ShoppingAgent:
        with self._lock:
            if self._agent is None:
                self._agent = ShoppingAgent(llm.client(), self.tools, self.memory, self.config)
            return self._agent

    def context(self, served: Served, llm: LLMLayer, user_id: str | None) -> ToolContext:
        def search(query: str, cap: float | None, k: int) -> list[int]:
            request = DecisionRequest(k=k, filters=Filters(price_max=cap), explore=False)
            inputs = {"user_id": user_id or ANONYMOUS, "query": query, "expansions": (),
                      "request": request}  # fmt: skip
            with served.lock:
                decision = served.search.run(inputs).state["decision"]
            return [int(i) for i in np.asarray(decision.ids)]

        def recommend(k: int) -> list[int]:
            request = DecisionRequest(k=k, explore=False)
            with served.lock:
                result = served.recommend.run({"user_id": user_id or ANONYMOUS, "request": request})
            return [int(i) for i in np.asarray(result.state["decision"].ids)]

        comparer = Comparer(llm.client(), served.bundle.items, llm.compare_timeout_s)
        return ToolContext(served.bundle.items, search, recommend, comparer)

    def stream(self, served: Served, llm: LLMLayer | None, request: ChatRequest) -> Iterator[str]:
        """Server-sent events of one turn: step..., message, done (or error then done)."""
        try:
            if llm is None:
                raise LLMError("no LLM layer")
            agent = self.agent(llm)
            ctx = self.context(served, llm, request.user_id)
        except LLMError as exc:
            yield sse("error", {"degraded": ["llm_unavailable"], "message": str(exc)})
            yield sse("done", {"degraded": ["llm_unavailable"]})
            return
        for event in agent.run(request.session_id, request.message, ctx):
            yield sse(event["event"], event["data"])


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"
