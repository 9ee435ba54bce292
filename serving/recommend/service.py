"""Recommend: run the bundle's pipeline for one shopper and shape the answer."""

from __future__ import annotations

from agents.layer import LLMLayer
from recsys.decision.log import DecisionLog
from serving.llm_steps import history_context
from serving.metrics import ServingMetrics
from serving.recommend.protocol import RecommendRequest, RecommendResponse
from serving.shared import (
    decided_k,
    fill,
    new_request_id,
    request_of,
    run_list,
    with_llm_rerank,
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
    result = run_list(
        served,
        served.recommend,
        inputs,
        endpoint=ENDPOINT,
        metrics=metrics,
        log=None if request.llm_rerank else log,
    )
    degraded: list[str] = []
    if request.llm_rerank:
        context = history_context(served, result.state["history"])
        degraded = await with_llm_rerank(
            served, result, inputs, k=request.k, context=context, endpoint=ENDPOINT,
            metrics=metrics, log=log, llm=llm,
        )  # fmt: skip
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
        degraded=degraded,
    )
    fill(response, served, result, request.explain or request.llm_rerank, request.trace)
    return response
