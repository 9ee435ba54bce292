"""Search: a query's candidates (BM25 + text encoder), then the decision layer."""

from __future__ import annotations

from agents.rewrite import Rewrite
from recsys.pipeline import Result
from serving.lists.protocol import FilterSpec
from serving.lists.service import (
    ListCall,
    ListDeps,
    fill,
    new_request_id,
    run_decided,
    run_list,
)
from serving.llm_steps import guarded
from serving.search.protocol import RewriteInfo, SearchRequest, SearchResponse
from serving.state import Served

ENDPOINT = "search"
ANONYMOUS = ""  # never a catalog user: no purchases to exclude


async def rewrite_query(
    served: Served, request: SearchRequest, deps: ListDeps
) -> tuple[Rewrite | None, list[str]]:
    """The validated rewrite (None when off or failed) and what degraded, off the event loop."""
    llm = deps.llm
    if request.rewrite == "off":
        return None, []
    if llm is None:
        return None, ["llm_unavailable"]
    mode = request.rewrite
    return await guarded(
        lambda: llm.rewrite(served, request.query, mode),
        endpoint=ENDPOINT, deps=deps, timeout_s=llm.rewrite_config.timeout_s,
    )  # fmt: skip


def with_rewrite(filters: FilterSpec | None, rewrite: Rewrite | None) -> FilterSpec | None:
    """The caller's filters, plus the rewrite's price cap where the caller set none."""
    if rewrite is None or rewrite.price_max is None:
        return filters
    spec = filters or FilterSpec()
    if spec.price_max is not None:
        return spec
    return spec.model_copy(update={"price_max": rewrite.price_max})


def call_of(
    served: Served, request: SearchRequest, rewrite: Rewrite | None, endpoint: str = ENDPOINT
) -> ListCall:
    expansions: tuple[str, ...] = ()
    if rewrite is not None:
        leaf = rewrite.category.split(" > ")[-1] if rewrite.category else None
        expansions = (*rewrite.keywords, *((leaf,) if leaf else ()))
    return ListCall(
        endpoint=endpoint,
        pipeline=served.search,
        inputs={
            "user_id": request.user_id or ANONYMOUS,
            "query": request.query,
            "expansions": expansions,
        },
        k=request.k,
        filters=with_rewrite(request.filters, rewrite),
        explore=request.explore,
        request_id=new_request_id(request.request_id),
        llm_rerank=request.llm_rerank,
        context=lambda _: f"searched for: {request.query}",
    )


def respond(
    served: Served,
    request: SearchRequest,
    call: ListCall,
    result: Result,
    deps: ListDeps,
    rewrite: Rewrite | None,
    degraded: list[str],
) -> SearchResponse:
    terms = int(result.state["query_terms"])
    if terms == 0:
        deps.metrics.fallback(call.endpoint, "no_lexical_match")
    response = SearchResponse(
        model_version=served.version,
        request_id=call.request_id,
        query=request.query,
        sources=list(result.state["candidates"].sources),
        matched_terms=terms,
        items=[],
        degraded=degraded,
    )
    if rewrite is not None:
        response.rewrite = RewriteInfo(
            kind=rewrite.kind,
            used_llm=rewrite.used_llm,
            keywords=list(rewrite.keywords),
            category=rewrite.category,
            price_max=rewrite.price_max,
            price_source=rewrite.price_source,
            rejected=list(rewrite.rejected),
        )
    explain = request.explain or request.llm_rerank
    fill(response, served, result, explain, request.trace, request.include_item)
    return response


def search_now(
    served: Served, request: SearchRequest, deps: ListDeps, endpoint: str = ENDPOINT
) -> SearchResponse:
    """The non-LLM answer (no rewrite, no rerank), synchronously (the agent's tools call this)."""
    plain = request.model_copy(update={"llm_rerank": False, "rewrite": "off"})
    call = call_of(served, plain, None, endpoint)
    return respond(served, plain, call, run_list(served, call, deps), deps, None, [])


async def search(served: Served, request: SearchRequest, deps: ListDeps) -> SearchResponse:
    rewrite, degraded = await rewrite_query(served, request, deps)
    call = call_of(served, request, rewrite)
    result, reranking = await run_decided(served, call, deps)
    return respond(served, request, call, result, deps, rewrite, degraded + reranking)
