"""Recommend: run the bundle's pipeline for one shopper and shape the answer."""

from __future__ import annotations

from recsys.decision.log import DecisionLog
from serving.metrics import ServingMetrics
from serving.recommend.protocol import RecommendRequest, RecommendResponse
from serving.shared import fill, new_request_id, request_of, run_list
from serving.state import Served

ENDPOINT = "recommend"


def recommend(
    served: Served,
    request: RecommendRequest,
    metrics: ServingMetrics,
    log: DecisionLog | None = None,
) -> RecommendResponse:
    request_id = new_request_id(request.request_id)
    decision = request_of(request.k, request.filters, request.explore, request_id)
    result = run_list(
        served,
        served.recommend,
        {"user_id": request.user_id, "request": decision},
        endpoint=ENDPOINT,
        metrics=metrics,
        log=log,
    )
    cold = bool(result.state["cold_start"])
    if cold:
        metrics.fallback(ENDPOINT, "cold_start")
    if served.ranker is None:
        metrics.fallback(ENDPOINT, "no_ranker")
    response = RecommendResponse(
        model_version=served.version,
        request_id=request_id,
        user_id=request.user_id,
        cold_start=cold,
        ranker=served.ranker,
        items=[],
    )
    fill(response, served, result, request.explain, request.trace)
    return response
