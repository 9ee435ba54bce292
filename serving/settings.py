"""Serving configuration, from ``RECSYS_*`` environment variables (pydantic-settings).

One object holds everything the server is configured with: its own fields, the LLM's
(``settings.llm``, ``RECSYS_LLM_*``) and the feature store's (``settings.features``,
``RECSYS_FEATURES_*``). The nested ones are built by their own classes, so each keeps its
variable names, and the agents and features packages never import serving.

Nothing is read at import: :func:`get_settings` builds the settings on first use and keeps them.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.llm import LLMSettings
from features.store import FeatureStoreSettings
from recsys.events import DEFAULT_EVENTS_PATH


class ServingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    bundle_path: Path = Field(
        default=Path("var/demo/bundle"),
        description="Artifact bundle to serve (written by `recsys train`); RECSYS_BUNDLE_PATH.",
    )
    ranker: str | None = Field(
        default=None,
        description="Ranker of the bundle to serve; None = the bundle's default ranker.",
    )
    load_on_start: bool = Field(
        default=True,
        description="Load bundle_path at start-up when the app was not given a bundle.",
    )
    events_path: Path = Field(
        default=DEFAULT_EVENTS_PATH,
        description="SQLite event log of POST /v1/events (WAL), replayed at start; "
        "RECSYS_EVENTS_PATH.",
    )
    decision_config: Path | None = Field(
        default=None,
        description="YAML/JSON business rules of the decision layer (see "
        "serving/decision.example.yaml); None = defaults; RECSYS_DECISION_CONFIG.",
    )
    decision_log_path: Path | None = Field(
        default=Path("var/serving/decisions.jsonl"),
        description="JSON-lines decision log (shown items with propensities, removed ones with "
        "why); None (an empty RECSYS_DECISION_LOG_PATH) = no log.",
    )
    metrics_dir: Path | None = Field(
        default=None,
        description="Workers publish their metrics here and /metrics sums every live worker's "
        "(set by `recsys serve --workers N`); None = this process only; RECSYS_METRICS_DIR.",
    )
    decision_log_max_mb: float = Field(
        default=64.0, gt=0, description="Rotate the decision log past this size; "
        "RECSYS_DECISION_LOG_MAX_MB.",
    )  # fmt: skip
    decision_log_backups: int = Field(
        default=5, ge=1, description="Rotated decision logs kept (decisions.jsonl.1, ...); "
        "RECSYS_DECISION_LOG_BACKUPS.",
    )  # fmt: skip
    reload_poll_seconds: float = Field(
        default=0.0,
        ge=0.0,
        description="Check bundle_path's manifest this often and reload when it changes "
        "(every worker does); 0 = off; RECSYS_RELOAD_POLL_SECONDS.",
    )
    push_events_to_feast: bool = Field(
        default=False,
        description="Push acknowledged events to the bundle's Feast online store (its "
        "user_activity rows) from a background thread; RECSYS_PUSH_EVENTS_TO_FEAST.",
    )
    otel: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry spans, metrics and logs, recorded where an "
        "OpenTelemetry provider is configured (opentelemetry-instrument, say). Off, a request "
        "skips the per-request provider lookups; /metrics (Prometheus) is served either way. "
        "RECSYS_OTEL.",
    )
    compute_threads: int = Field(
        default=1,
        ge=1,
        description="BLAS/OpenMP threads per worker process. A request is too small to split, "
        "and idle BLAS threads spin on the cores other requests need: scale with --workers "
        "instead; RECSYS_COMPUTE_THREADS.",
    )
    max_batch: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Most list requests (recommend, search) a worker runs as one batch: those "
        "it has in hand at the same moment share one ranker call, one feature read and one "
        "frame, and each gets the answer it would get alone. A lone request never waits for "
        "others; 1 runs every request alone; RECSYS_MAX_BATCH.",
    )
    min_batch: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Fewest list requests in hand that run as one batch: a shorter queue runs "
        "one request at a time, each answered before the next starts (a batch answers all its "
        "requests at its end, and below saturation saves little); RECSYS_MIN_BATCH.",
    )
    candidate_cache: int = Field(
        default=4096,
        ge=0,
        description="Histories whose merged candidates a worker keeps, and as many rankings "
        "(least recently used go first; ~22 KB and ~14 KB each at 500 candidates from four "
        "sources): a shopper who asks again with the same history skips retrieval, and with the "
        "same stored features too, the ranking; the decision runs afresh. A new event changes "
        "the history, a pushed feature row or a materialization the ranking's key, a reload "
        "starts empty; 0 = off; RECSYS_CANDIDATE_CACHE.",
    )
    llm_workers: int = Field(
        default=32,
        ge=1,
        le=256,
        description="Threads for LLM steps and chat turns, apart from the shared pool that "
        "health, metrics and events use (a slow model only fills these). They mostly wait "
        "for the model, which serves one call at a time within each call's deadline; "
        "RECSYS_LLM_WORKERS.",
    )
    chat_planner: Literal["auto", "router", "agent"] = Field(
        default="auto",
        description="Who plans a chat turn: the router (the catalog parser runs the tools; the "
        "LLM only words replies) or the ReAct master agent. auto: the agent when the LLM is "
        "an OpenAI-compatible server with a model other than the packaged SmolLM2 (e.g. vLLM), "
        "else the router; RECSYS_CHAT_PLANNER.",
    )
    chat_memory: str = Field(
        default="var/serving/chat.sqlite",
        description="Shopping-agent session memory: a SQLite file, or redis://host:port/db for "
        "several replicas; RECSYS_CHAT_MEMORY.",
    )
    max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="Largest request body accepted; a larger one is 413; RECSYS_MAX_BODY_BYTES.",
    )
    max_url_bytes: int = Field(
        default=8192,
        ge=256,
        description="Longest URL (path and query) accepted; a longer one is 414; "
        "RECSYS_MAX_URL_BYTES.",
    )
    admin_api_key: SecretStr | None = Field(
        default=None,
        description="Key for the /admin routes; they are off while it is unset or empty (no "
        "default).",
    )

    def planner(self) -> Literal["router", "agent"]:
        """The chat planner ``chat_planner`` names (auto resolved against the LLM settings)."""
        if self.chat_planner != "auto":
            return self.chat_planner
        capable = self.llm.backend == "openai" and "smollm" not in self.llm.model.lower()
        return "agent" if capable else "router"

    @field_validator("admin_api_key", mode="after")
    @classmethod
    def _no_empty_key(cls, key: SecretStr | None) -> SecretStr | None:
        # RECSYS_ADMIN_API_KEY= (set, empty) must not mean "the empty key opens /admin"
        return key if key is not None and key.get_secret_value().strip() else None

    @field_validator("ranker", "decision_config", "decision_log_path", "metrics_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        # RECSYS_DECISION_LOG_PATH= (set, empty) means "none": as a path it read as ".", a
        # folder the log's writer cannot open, and its queue then filled with every request
        return None if isinstance(value, str) and not value.strip() else value

    llm: LLMSettings = Field(
        default_factory=LLMSettings,
        description="The LLM client: RECSYS_LLM_BACKEND, RECSYS_LLM_BASE_URL, ...",
    )
    features: FeatureStoreSettings = Field(
        default_factory=FeatureStoreSettings,
        description="Feast online store and cache: RECSYS_FEATURES_ONLINE_STORE, ...",
    )


@lru_cache(maxsize=1)
def get_settings() -> ServingSettings:
    """The process's settings, read from the environment on first use."""
    return ServingSettings()
