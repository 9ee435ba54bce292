"""The shopping agent over the served bundle: tools act through the engine port, events as SSE."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from agents.agent import AgentConfig, ShoppingAgent
from agents.compare import Comparer
from agents.layer import LLMLayer
from agents.llm import LLMClient, LLMError
from agents.memory import SessionMemory
from agents.owners import SessionOwners
from agents.port import CatalogPort, EnginePort
from agents.router import ChatRouter, RouterConfig
from agents.tools import ToolContext, default_tools
from agents.vocabulary import CatalogVocabulary
from serving.chat.protocol import ChatRequest


class ChatService:
    def __init__(
        self,
        memory: SessionMemory,
        config: AgentConfig | None = None,
        router: RouterConfig | None = None,
    ) -> None:
        self.memory = memory
        self.config = config or AgentConfig()
        self.router_config = router or RouterConfig()
        self.tools = default_tools()  # checked here, at start-up
        self._agent: ShoppingAgent | None = None
        self._vocab: tuple[str, CatalogVocabulary] | None = None
        self.owners = SessionOwners(memory)
        self.gate = threading.BoundedSemaphore(1)  # the chat turns' CPU work, one at a time
        self._lock = threading.Lock()

    def agent(self, llm: LLMLayer) -> ShoppingAgent:
        with self._lock:
            if self._agent is None:
                self._agent = ShoppingAgent(
                    llm.client("agent"), self.tools, self.memory, self.config
                )
            return self._agent

    def vocabulary(self, engine: CatalogPort) -> CatalogVocabulary:
        """The catalog's vocabulary, built once per served bundle."""
        with self._lock:
            if self._vocab is None or self._vocab[0] != engine.version:
                # the sentence encoder places product words the catalog never uses
                vocab = CatalogVocabulary.build(engine.catalog, similarity=engine.encoder())
                self._vocab = (engine.version, vocab)
            return self._vocab[1]

    def router(self, engine: CatalogPort, llm: LLMLayer | None) -> ChatRouter:
        """The router over ``engine``; with a loadable LLM it words replies and the agent
        plans the turns the parser cannot read."""
        client, agent = None, None
        if llm is not None:
            try:
                client, agent = llm.client("reply"), self.agent(llm)
            except LLMError:  # no model: the router answers alone, flagged llm_unavailable
                client, agent = None, None
        return ChatRouter(
            self.vocabulary(engine), self.memory, self.router_config, client, agent, self.gate
        )

    def stream(
        self,
        engine: EnginePort,
        llm: LLMLayer | None,
        request: ChatRequest,
        issued: str | None = None,
    ) -> Iterator[str]:
        """Server-sent events of one turn: step..., message, done (``done`` carries the
        session token ``issued`` on a session's first turn)."""
        router = self.router(engine, llm)
        timeout = llm.compare_timeout_s if llm is not None else 0.0
        comparer = Comparer(_compare_client(llm), engine.catalog, timeout)  # type: ignore[arg-type]
        ctx = ToolContext.over(engine, request.user_id, comparer)
        for event in router.run(request.session_id, request.message, ctx):
            data = event["data"]
            if event["event"] == "done" and issued:
                data = {**data, "session_token": issued}  # the stored trace never holds it
            yield sse(event["event"], data)


def _compare_client(llm: LLMLayer | None) -> LLMClient | None:
    if llm is None:
        return None
    try:
        return llm.client("compare")
    except LLMError:
        return None


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n"
