"""Recommend: run the bundle's pipeline for one shopper and shape the answer."""

from __future__ import annotations

from agents.layer import LLMLayer
from recsys.decision.log import DecisionLog
from serving.llm_steps import history_context
from serving.metrics import ServingMetrics
from serving.recommend.protocol import RecommendRequest, RecommendResponse
from serving.shared import (
    count_fallbacks,
    decided_k,
    fill,
    new_request_id,
    request_of,
    run_decided,
)
from serving.state import Served

ENDPOINT = "recommend"


async def recommend(
    served: Served,
    request: RecommendRequest,
    metrics: ServingMetrics,
    log: DecisionLog | None = None,
    llm: LLMLayer | None = None,
) -> RecommendResponse:
    request_id = new_request_id(request.request_id)
    decision = request_of(
        decided_k(request.k, request.llm_rerank, llm), request.filters, request.explore, request_id
    )
    inputs = {"user_id": request.user_id, "request": decision}
    result, degraded = await run_decided(
        served, served.recommend, inputs, k=request.k, llm_rerank=request.llm_rerank,
        context=lambda done: history_context(served, done.state["history"]),
        endpoint=ENDPOINT, metrics=metrics, log=log, llm=llm,
    )  # fmt: skip
    cold = bool(result.state["cold_start"])
    count_fallbacks(metrics, ENDPOINT, cold, served.ranker)
    response = RecommendResponse(
        model_version=served.version,
        request_id=request_id,
        user_id=request.user_id,
        cold_start=cold,
        ranker=served.ranker,
        items=[],
        degraded=degraded,
    )
    fill(response, served, result, request.explain or request.llm_rerank, request.trace)
    return response
