"""The LLM layer as the server holds it: one client, built on first use, and per-bundle helpers.

Nothing loads at start-up: a server that is never asked for an LLM feature never loads a model,
and one whose LLM cannot load (no ``llm`` extra, a bad URL) keeps answering without it, flagged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from agents.llm import LLMClient, LLMError, LLMSettings, LLMTimeout, Observer, get_llm_settings
from agents.port import CatalogPort
from agents.rerank import LLMReranker, RerankConfig
from agents.rewrite import QueryRewriter, Rewrite, RewriteConfig
from agents.vocabulary import CatalogVocabulary

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
        self._client = client  # given: every purpose uses it (tests, notebooks)
        self._clients: dict[tuple[Any, ...], LLMClient] = {}
        self._failures: dict[tuple[Any, ...], str] = {}
        self._lock = threading.Lock()
        self._rewriters: dict[str, QueryRewriter] = {}
        self._rerankers: dict[str, LLMReranker] = {}
        self.observer: Observer | None = None  # the server's metrics, set before first use
        self.rerank_config = RerankConfig()
        self.rewrite_config = RewriteConfig()
        self.compare_timeout_s = 20.0  # four claims take SmolLM2-135M ~5-10 s on 2 cores

    def client(self, purpose: str = "agent") -> LLMClient:
        """The client ``purpose`` is routed to (``RECSYS_LLM_ROUTES``; purposes routed alike
        share one); :class:`LLMError` when it cannot be built (remembered, not retried)."""
        if self._client is not None:
            return self._client
        base = self.settings or get_llm_settings()
        settings = base.for_purpose(purpose)
        key = settings.backend_key()
        with self._lock:
            found = self._clients.get(key)
            if found is None:
                if key in self._failures:
                    raise LLMError(self._failures[key])
                try:
                    found = LLMClient.from_settings(settings)
                except Exception as exc:  # any load failure: the API answers without the LLM
                    self._failures[key] = f"the LLM for {purpose} could not be loaded: {exc}"
                    raise LLMError(self._failures[key]) from exc
                found.observer = self.observer
                self._clients[key] = found
            return found

    def observe(self, observer: Observer) -> None:
        """Report every call of every client, built or to be built, to ``observer``."""
        self.observer = observer
        for client in self.loaded():
            client.observer = observer

    def breakers(self) -> dict[str, str]:
        """{breaker name: state} of the HTTP backends built so far."""
        return {c.breaker.name: c.breaker.state for c in self.loaded() if c.breaker is not None}

    def loaded(self) -> list[LLMClient]:
        """The clients built so far (for usage reports)."""
        return [self._client] if self._client is not None else list(self._clients.values())

    def rewriter(self, engine: CatalogPort) -> QueryRewriter:
        """The query rewriter over ``engine``'s catalog and search vocabulary."""
        version = engine.version
        rewriter = self._rewriters.get(version)
        if rewriter is None:
            similarity = engine.encoder()
            rewriter = QueryRewriter(
                self.client("rewrite"),
                engine.catalog,
                engine.in_vocabulary,
                self.rewrite_config,
                similarity=similarity,
                # the shopping agent's parser reads prices, brand, category and attributes
                parser=CatalogVocabulary.build(engine.catalog, similarity=similarity),
            )
            self._rewriters = {version: rewriter}  # the old bundle's goes with it
        return rewriter

    def rewrite(self, engine: CatalogPort, query: str, mode: Literal["auto", "force"]) -> Rewrite:
        return self.rewriter(engine).rewrite(query, mode)

    def reranker(self, engine: CatalogPort) -> LLMReranker:
        version = engine.version
        reranker = self._rerankers.get(version)
        if reranker is None:
            reranker = LLMReranker(self.client("rerank"), engine.catalog, self.rerank_config)
            self._rerankers = {version: reranker}
        return reranker


def encoder_similarity(model: Any, cached: int = 4096) -> Any:
    """(query, texts) -> cosine similarities with the bundle's sentence encoder.

    The texts compared against are the catalog's few names (category leaves, attribute
    values), the same on every call: their vectors are kept (up to ``cached``), so a call
    encodes the query and any new text only. Encoding a query with the 112 leaf names each time
    took 0.3 s of a long-tail search on 2 cores.
    """
    import numpy as np

    vectors: dict[str, np.ndarray] = {}
    lock = threading.Lock()

    def similarity(query: str, texts: list[str]) -> np.ndarray:
        with lock:
            have = {t: vectors[t] for t in texts if t in vectors}
        new = [t for t in dict.fromkeys(texts) if t not in have]
        encoded = model.encode_queries([query, *new])  # (1 + new, D), unit length
        have.update(zip(new, encoded[1:], strict=True))
        with lock:
            if len(vectors) + len(new) > cached:
                vectors.clear()  # a bundle whose names outgrow the cache: start again
            vectors.update((t, have[t]) for t in new)
        if not texts:
            return np.zeros(0)
        return np.asarray(np.stack([have[t] for t in texts]) @ encoded[0])  # (n,)

    return similarity
