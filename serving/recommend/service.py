"""Recommend: run the bundle's pipeline for one shopper and shape the answer."""

from __future__ import annotations

from recsys.pipeline import Result
from serving.lists.service import (
    ListCall,
    ListDeps,
    count_fallbacks,
    fill,
    new_request_id,
    run_decided,
    run_list,
)
from serving.llm_steps import history_context
from serving.recommend.protocol import RecommendRequest, RecommendResponse
from serving.state import Served

ENDPOINT = "recommend"


def call_of(served: Served, request: RecommendRequest, endpoint: str = ENDPOINT) -> ListCall:
    return ListCall(
        endpoint=endpoint,
        pipeline=served.recommend,
        inputs={"user_id": request.user_id},
        k=request.k,
        filters=request.filters,
        explore=request.explore,
        request_id=new_request_id(request.request_id),
        llm_rerank=request.llm_rerank,
        explain=request.explain,
        context=lambda done: history_context(served, done.state["history"]),
    )


def respond(
    served: Served,
    request: RecommendRequest,
    call: ListCall,
    result: Result,
    deps: ListDeps,
    degraded: list[str],
) -> RecommendResponse:
    cold = bool(result.state["cold_start"])
    count_fallbacks(deps, call.endpoint, cold, served.ranker)
    response = RecommendResponse(
        model_version=served.version,
        request_id=call.request_id,
        user_id=request.user_id,
        cold_start=cold,
        ranker=served.ranker,
        items=[],
        degraded=degraded,
    )
    explain = request.explain or request.llm_rerank
    fill(response, served, result, explain, request.trace, request.include_item)
    return response


def recommend_now(
    served: Served, request: RecommendRequest, deps: ListDeps, endpoint: str = ENDPOINT
) -> RecommendResponse:
    """The non-LLM answer, synchronously (the agent's tools call this)."""
    call = call_of(served, request.model_copy(update={"llm_rerank": False}), endpoint)
    return respond(served, request, call, run_list(served, call, deps), deps, [])


async def recommend(
    served: Served, request: RecommendRequest, deps: ListDeps
) -> RecommendResponse:
    call = call_of(served, request)
    result, degraded = await run_decided(served, call, deps)
    return respond(served, request, call, result, deps, degraded)
