"""The two ways the LLM client reaches a model: llama.cpp in this process, or an
OpenAI-compatible HTTP server (``llama_cpp.server`` on a CPU, vLLM on a GPU).

Both generate (streamed text pieces, the client checks the deadline) and score: the
log-probability of each of a few one-token labels as the next token after a prompt, which is
how the reranker reads a model's preference in one forward pass instead of generating text.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from agents.llm_settings import LLMError, LLMSettings, Message, packaged_model
from agents.llm_weights import served_weights

SHARED = "shared"


class LlamaCppBackend:
    """llama.cpp in this process.

    One computation at a time (the model's CPU threads are shared, and a context is not
    thread-safe), but a context per purpose named in ``kv_slots``: llama.cpp reuses the KV cache
    of the longest prompt prefix a context already holds, so each purpose's fixed prefix (the
    agent's tool descriptions, the reply's few-shot examples) stays computed when purposes
    interleave. The weights are memory-mapped once and shared by the contexts.
    """

    def __init__(self, settings: LLMSettings) -> None:
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise LLMError("llama_cpp backend needs the llm extra (llama-cpp-python)") from exc
        self.settings = settings
        self.source = settings.model_path or packaged_model()
        if not self.source.is_file():
            raise LLMError(f"no model file at {self.source} (RECSYS_LLM_MODEL_PATH)")
        self.path = served_weights(settings)
        self.slots = set(settings.kv_slots)
        self._contexts: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.context(SHARED)  # load now: a bad file fails here, not on a shopper's turn

    def context(self, purpose: str) -> Any:
        """The Llama context ``purpose`` computes in (its own, or the shared one)."""
        from llama_cpp import Llama

        slot = purpose if purpose in self.slots else SHARED
        found = self._contexts.get(slot)
        if found is None:
            found = Llama(
                model_path=str(self.path), n_ctx=self.settings.n_ctx,
                n_threads=self.settings.threads, n_threads_batch=self.settings.threads_batch,
                n_batch=256, flash_attn=self.settings.flash_attn, verbose=False, seed=0,
            )  # fmt: skip
            self._contexts[slot] = found
        return found

    def _acquire(self, deadline: float) -> bool:
        # Waiting for the model counts against the deadline: a caller whose deadline passes
        # in the queue gets its timeout then, not after every caller ahead of it is served.
        return self.lock.acquire(timeout=max(deadline - time.monotonic(), 0.0))

    def stream(
        self, messages: list[Message], schema: dict[str, Any] | None, max_tokens: int,
        temperature: float, deadline: float, purpose: str = SHARED,
    ) -> Iterator[str]:  # fmt: skip
        fmt = {"type": "json_object", "schema": schema} if schema is not None else None
        if not self._acquire(deadline):
            return  # the client sees the deadline passed and raises LLMTimeout
        try:
            llm = self.context(purpose)
            chunks = llm.create_chat_completion(
                messages=messages, response_format=fmt, max_tokens=max_tokens,
                temperature=temperature, stream=True,
            )  # fmt: skip
            for chunk in chunks:
                delta: Any = chunk["choices"][0]["delta"]
                piece = delta.get("content") if isinstance(delta, dict) else None
                if piece:
                    yield str(piece)
                if time.monotonic() > deadline:
                    return  # the client sees the deadline passed and raises
        finally:
            self.lock.release()

    def label_logprobs(
        self, prompt: str, labels: Sequence[str], deadline: float, purpose: str = SHARED
    ) -> np.ndarray | None:
        """(len(labels),) log-probabilities of each label's first token as the next token;
        None when the deadline passed before the model was free."""
        if not self._acquire(deadline):
            return None
        try:
            llm = self.context(purpose)
            tokens = llm.tokenize(prompt.encode(), add_bos=True, special=False)
            ids = label_tokens(lambda s: llm.tokenize(s.encode(), add_bos=False), labels)
            # keep the KV of the prefix this context already holds; at least one token is
            # evaluated so that the logits are this prompt's
            held = list(llm.input_ids[: llm.n_tokens])
            keep = 0
            for a, b in zip(held, tokens[:-1], strict=False):
                if a != b:
                    break
                keep += 1
            llm.n_tokens = keep
            llm.eval(tokens[keep:])
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
            logits = logits.astype(np.float64)  # (V,)
            top = float(logits.max())
            log_z = top + float(np.log(np.exp(logits - top).sum()))
            return logits[ids] - log_z
        finally:
            self.lock.release()

    def count(self, messages: list[Message]) -> int:
        text = "\n".join(m["content"] for m in messages)
        return len(self.context(SHARED).tokenize(text.encode(), add_bos=True))


def label_tokens(tokenize: Any, labels: Sequence[str]) -> list[int]:
    """The first token of each label as written after a space; labels must differ in it."""
    ids = [tokenize(f" {label}")[0] for label in labels]
    if len(set(ids)) != len(ids):
        raise LLMError(f"labels {list(labels)} do not start with distinct tokens")
    return ids


class OpenAIHTTPBackend:
    """Any OpenAI-compatible server: /chat/completions streamed over server-sent events for
    text, /completions with ``logprobs`` for label scores."""

    def __init__(self, settings: LLMSettings) -> None:
        import httpx

        headers = {}
        if settings.api_key is not None:
            headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
        self.settings = settings
        self.http = httpx.Client(base_url=settings.base_url.rstrip("/"), headers=headers)

    def _format(self, schema: dict[str, Any]) -> dict[str, Any]:
        if self.settings.schema_format == "openai":
            return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                                           "strict": True}}  # fmt: skip
        return {"type": "json_object", "schema": schema}

    def stream(
        self, messages: list[Message], schema: dict[str, Any] | None, max_tokens: int,
        temperature: float, deadline: float, purpose: str = SHARED,
    ) -> Iterator[str]:  # fmt: skip
        body: dict[str, Any] = {
            "model": self.settings.model, "messages": messages, "max_tokens": max_tokens,
            "temperature": temperature, "stream": True,
        }  # fmt: skip
        if schema is not None:
            body["response_format"] = self._format(schema)
        for line in self._post("/chat/completions", body, deadline, stream=True):
            if not line.startswith("data:") or line.strip() == "data: [DONE]":
                continue
            delta = json.loads(line[5:])["choices"][0].get("delta", {})
            if delta.get("content"):
                yield str(delta["content"])
            if time.monotonic() > deadline:
                return

    def label_logprobs(
        self, prompt: str, labels: Sequence[str], deadline: float, purpose: str = SHARED
    ) -> np.ndarray | None:
        """From the top log-probabilities of one generated token (vLLM returns up to 20 by
        default; ``llama_cpp.server`` needs ``--logits_all true``). A label outside the top
        gets the lowest returned value less one nat: unlikely, still ordered."""
        body = {"model": self.settings.model, "prompt": prompt, "max_tokens": 1,
                "temperature": 0.0, "logprobs": 20}  # fmt: skip
        lines = list(self._post("/completions", body, deadline, stream=False))
        if not lines:
            return None
        try:
            choice = json.loads(lines[0])["choices"][0]
            top: dict[str, float] = (choice.get("logprobs") or {})["top_logprobs"][0]
        except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
            raise LLMError(f"the server returned no logprobs: {lines[0][:300]}") from exc
        best: dict[str, float] = {}
        for token, value in top.items():
            key = token.strip()
            best[key] = max(best.get(key, -np.inf), float(value))
        floor = min(best.values(), default=0.0) - 1.0
        return np.array([best.get(label, floor) for label in labels], dtype=np.float64)

    def _post(
        self, path: str, body: dict[str, Any], deadline: float, stream: bool
    ) -> Iterator[str]:
        """Lines of the answer (the whole body as one line when not streamed), retried with
        backoff on connection errors and 5xx; :class:`LLMError` when it cannot answer."""
        import httpx

        for attempt in range(self.settings.retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                with self.http.stream("POST", path, json=body,
                                      timeout=httpx.Timeout(left)) as reply:  # fmt: skip
                    if reply.status_code >= 500:
                        raise LLMError(f"LLM server answered {reply.status_code}")
                    if reply.status_code >= 400:
                        reply.read()
                        raise LLMError(f"LLM server refused the request: {reply.text[:300]}")
                    if not stream:
                        reply.read()
                        yield reply.text
                        return
                    yield from reply.iter_lines()
                    return
            except (httpx.TransportError, LLMError) as exc:
                retriable = isinstance(exc, httpx.TransportError) or "answered 5" in str(exc)
                if not retriable or attempt == self.settings.retries:
                    raise LLMError(f"LLM server at {self.settings.base_url}: {exc}") from exc
                time.sleep(min(0.2 * 2**attempt, max(deadline - time.monotonic(), 0)))

    def count(self, messages: list[Message]) -> int:
        return sum(len(m["content"]) for m in messages) // 4  # the server does not say
