"""The LLM layer as the server holds it: one client, built on first use, and per-bundle helpers.

Nothing loads at start-up: a server that is never asked for an LLM feature never loads a model,
and one whose LLM cannot load (no ``llm`` extra, a bad URL) keeps answering without it, flagged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from agents.llm import LLMClient, LLMError, LLMSettings, LLMTimeout
from agents.port import CatalogPort
from agents.rerank import LLMReranker, RerankConfig
from agents.rewrite import QueryRewriter, Rewrite, RewriteConfig

T = TypeVar("T")


def attempt(step: Callable[[], T]) -> tuple[T | None, list[str]]:
    """Run one LLM step: (its result, []) or (None, [why it degraded]); never raises an LLM
    failure. The server and the notebooks guard every LLM step with it, so both show the
    non-LLM answer, flagged, when the model is late, fails or cannot load."""
    try:
        return step(), []
    except LLMTimeout:
        return None, ["llm_timeout"]
    except LLMError:
        return None, ["llm_error"]


class LLMLayer:
    def __init__(
        self, settings: LLMSettings | None = None, client: LLMClient | None = None
    ) -> None:
        self.settings = settings
        self._client = client
        self._failure: str | None = None
        self._lock = threading.Lock()
        self._rewriters: dict[str, QueryRewriter] = {}
        self._rerankers: dict[str, LLMReranker] = {}
        self.rerank_config = RerankConfig()
        self.rewrite_config = RewriteConfig()
        self.compare_timeout_s = 20.0  # four claims take SmolLM2-135M ~5-10 s on 2 cores

    def client(self) -> LLMClient:
        """The client; :class:`LLMError` when it cannot be built (remembered, not retried)."""
        with self._lock:
            if self._client is None:
                if self._failure is not None:
                    raise LLMError(self._failure)
                try:
                    self._client = LLMClient.from_settings(self.settings)
                except Exception as exc:  # any load failure: the API answers without the LLM
                    self._failure = f"the LLM could not be loaded: {exc}"
                    raise LLMError(self._failure) from exc
            return self._client

    def rewriter(self, engine: CatalogPort) -> QueryRewriter:
        """The query rewriter over ``engine``'s catalog and search vocabulary."""
        version = engine.version
        rewriter = self._rewriters.get(version)
        if rewriter is None:
            rewriter = QueryRewriter(
                self.client(),
                engine.catalog,
                engine.in_vocabulary,
                self.rewrite_config,
                similarity=engine.encoder(),
            )
            self._rewriters = {version: rewriter}  # the old bundle's goes with it
        return rewriter

    def rewrite(self, engine: CatalogPort, query: str, mode: Literal["auto", "force"]) -> Rewrite:
        return self.rewriter(engine).rewrite(query, mode)

    def reranker(self, engine: CatalogPort) -> LLMReranker:
        version = engine.version
        reranker = self._rerankers.get(version)
        if reranker is None:
            reranker = LLMReranker(self.client(), engine.catalog, self.rerank_config)
            self._rerankers = {version: reranker}
        return reranker


def encoder_similarity(model: Any) -> Any:
    """(query, texts) -> cosine similarities with the bundle's sentence encoder."""
    import numpy as np

    def similarity(query: str, texts: list[str]) -> np.ndarray:
        vectors = model.encode_queries([query, *texts])  # (1 + n, D), unit length
        return np.asarray(vectors[1:] @ vectors[0])

    return similarity
