"""Recommend: run the bundle's pipeline for one shopper and shape the answer."""

from __future__ import annotations

from serving.metrics import ServingMetrics
from serving.recommend.protocol import RecommendRequest, RecommendResponse
from serving.shared import candidate_count, scored_items, trace_ms
from serving.state import Served

ENDPOINT = "recommend"


def recommend(
    served: Served, request: RecommendRequest, metrics: ServingMetrics
) -> RecommendResponse:
    with served.lock:
        result = served.recommend.run({"user_id": request.user_id})
    state = result.state
    cold = bool(state["cold_start"])
    metrics.observe_pipeline(
        ENDPOINT, result.trace, state["source_timings"], candidate_count(state)
    )
    if cold:
        metrics.fallback(ENDPOINT, "cold_start")
    if served.ranker is None:
        metrics.fallback(ENDPOINT, "no_ranker")
    response = RecommendResponse(
        model_version=served.version,
        user_id=request.user_id,
        cold_start=cold,
        ranker=served.ranker,
        items=scored_items(served.bundle.item_ids, state, request.k, request.explain),
    )
    if request.trace:
        response.trace = trace_ms(result)  # set only when asked: absent from the JSON otherwise
    return response
