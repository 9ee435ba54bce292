"""The shopping agent over the served bundle: tools act through the engine port, events as SSE."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from agents.agent import AgentConfig, ShoppingAgent
from agents.compare import Comparer
from agents.layer import LLMLayer
from agents.llm import LLMError
from agents.memory import SessionMemory
from agents.port import EnginePort
from agents.tools import ToolContext, default_tools
from serving.chat.protocol import ChatRequest


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

    def stream(
        self, engine: EnginePort, llm: LLMLayer | None, request: ChatRequest
    ) -> Iterator[str]:
        """Server-sent events of one turn: step..., message, done (or error then done)."""
        try:
            if llm is None:
                raise LLMError("no LLM layer")
            agent = self.agent(llm)
            comparer = Comparer(llm.client(), engine.catalog, llm.compare_timeout_s)
            ctx = ToolContext.over(engine, request.user_id, comparer)
        except LLMError as exc:
            yield sse("error", {"degraded": ["llm_unavailable"], "message": str(exc)})
            yield sse("done", {"degraded": ["llm_unavailable"]})
            return
        for event in agent.run(request.session_id, request.message, ctx):
            yield sse(event["event"], event["data"])


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"
