"""Per-arm Prometheus series, in the app's own registry (see serving.metrics for why the values
live in in-memory families rather than prometheus_client metrics)."""

from __future__ import annotations

from serving.metrics import LATENCY_BUCKETS, ServingMetrics, _Family


class ArmMetrics:
    def __init__(self, metrics: ServingMetrics) -> None:
        labels = ("experiment", "arm")
        self.requests = _Family(
            "recsys_arm_requests", "List requests served per arm", (*labels, "endpoint"), "counter"
        )
        self.latency = _Family(
            "recsys_arm_latency_seconds",
            "Pipeline latency per arm",
            labels,
            "histogram",
            LATENCY_BUCKETS,
        )
        self.errors = _Family(
            "recsys_arm_errors", "List requests that failed per arm", labels, "counter"
        )
        self.degraded = _Family(
            "recsys_arm_degraded",
            "Answers that fell back per arm, by step",
            (*labels, "step"),
            "counter",
        )
        self.shadow = _Family(
            "recsys_arm_shadow_lists",
            "Lists a shadow arm computed (never shown), by outcome",
            (*labels, "outcome"),
            "counter",
        )
        self.clicks = _Family(
            "recsys_arm_clicks",
            "Attributed clicks (click, cart, purchase events naming a request_id) per arm",
            labels,
            "counter",
        )
        self.conversions = _Family(
            "recsys_arm_conversions", "Attributed purchases per arm", labels, "counter"
        )
        self.value = _Family(
            "recsys_arm_value",
            "Attributed order value per arm (divide by recsys_arm_requests for value per request)",
            labels,
            "counter",
        )
        self.rollbacks = _Family(
            "recsys_arm_rollbacks",
            "Automatic rollbacks by guardrail",
            (*labels, "guardrail"),
            "counter",
        )
        metrics.add(
            self.requests, self.latency, self.errors, self.degraded, self.shadow, self.clicks,
            self.conversions, self.value, self.rollbacks,
        )  # fmt: skip
