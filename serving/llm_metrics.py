"""The LLM layer in /metrics: calls, tokens, latency, timeouts, errors, cache hits and degraded
answers, per purpose (rewrite, rerank, compare, agent, reply) and backend.

The client reports each call to an observer (:class:`agents.llm.CallRecord`); this module is
the server's observer, adding into the app's own registry like every other serving metric.
"""

from __future__ import annotations

from agents.llm import CallRecord
from serving.metrics import LATENCY_BUCKETS, ServingMetrics, _Family

LLM_BUCKETS = (*LATENCY_BUCKETS, 10.0, 30.0)


class LLMMetrics:
    def __init__(self, metrics: ServingMetrics) -> None:
        labels = ("purpose", "backend")
        self.calls = _Family(
            "recsys_llm_calls", "LLM calls by purpose, backend and outcome (ok, timeout, error, "
            "cache_hit)", (*labels, "outcome"), "counter",
        )  # fmt: skip
        self.tokens = _Family(
            "recsys_llm_tokens", "LLM tokens by purpose, backend and kind (prompt, completion)",
            (*labels, "kind"), "counter",
        )  # fmt: skip
        self.latency = _Family(
            "recsys_llm_latency_seconds", "LLM call latency (cache hits excluded)", labels,
            "histogram", LLM_BUCKETS,
        )  # fmt: skip
        self.degraded = _Family(
            "recsys_llm_degraded", "Answers returned without an LLM step, by purpose and why "
            "(llm_timeout, llm_error, llm_unavailable, ...)", ("purpose", "reason"), "counter",
        )  # fmt: skip
        metrics.add(self.calls, self.tokens, self.latency, self.degraded)

    def observe(self, record: CallRecord) -> None:
        """The client's observer: one call."""
        labels = (record.purpose, record.backend)
        self.calls.inc((*labels, record.outcome))
        if record.outcome == "cache_hit":
            return
        self.latency.observe(labels, record.seconds)
        if record.prompt_tokens:
            self.tokens.inc((*labels, "prompt"), record.prompt_tokens)
        if record.completion_tokens:
            self.tokens.inc((*labels, "completion"), record.completion_tokens)

    def degrade(self, purpose: str, reason: str) -> None:
        self.degraded.inc((purpose, reason))
