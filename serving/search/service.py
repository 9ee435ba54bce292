"""Search: a query's candidates (BM25 + text encoder), then the decision layer."""

from __future__ import annotations

from dataclasses import replace

from agents.layer import LLMLayer
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
from serving.search.rewriting import audience_keys, parsed_only, rewriter_for
from serving.search.rewriting import with_rewrite as rewritten_filters
from serving.state import Served

ENDPOINT = "search"
ANONYMOUS = ""  # never a catalog user: no purchases to exclude
REWRITE_SLACK_S = 0.2  # the parse, the cache, building a bundle's rewriter on first use


async def rewrite_query(
    served: Served, request: SearchRequest, deps: ListDeps
) -> tuple[Rewrite | None, list[str]]:
    """The validated rewrite (the parser's reading alone when the model failed; None when off)
    and what degraded, off the event loop."""
    llm = deps.llm
    if request.rewrite == "off":
        return None, []
    if llm is None:
        return None, ["llm_unavailable"]
    mode = request.rewrite
    # the model keeps its own deadline; the slack covers the parse, the cache and a first
    # request's building of the bundle's rewriter
    rewrite, degraded = await guarded(
        lambda: rewriter_for(served, llm).rewrite(request.query, mode),
        endpoint=ENDPOINT, deps=deps, timeout_s=llm.rewrite_config.timeout_s + REWRITE_SLACK_S,
    )  # fmt: skip
    if rewrite is None:  # the words' own prices and attributes still apply, flagged
        rewrite = parsed_only(served, llm, request.query)
    return rewrite, degraded


def with_rewrite(
    filters: FilterSpec | None,
    rewrite: Rewrite | None,
    priced: bool = True,
    audience: frozenset[str] = frozenset(),
) -> FilterSpec | None:
    """The caller's filters, plus what the rewrite read where the caller set nothing (see
    :func:`serving.search.rewriting.with_rewrite`). A catalog without prices (``priced``
    false) takes no price bound: the caller asked for no price filter, so none may fail
    their search."""
    if rewrite is not None and not priced:
        rewrite = replace(rewrite, price_min=None, price_max=None)
    return rewritten_filters(filters, rewrite, audience)


def call_of(
    served: Served,
    request: SearchRequest,
    rewrite: Rewrite | None,
    endpoint: str = ENDPOINT,
    llm: LLMLayer | None = None,
) -> ListCall:
    expansions: tuple[str, ...] = ()
    # a head query is searched as typed: fusing its category's search in cost attribute
    # queries 0.96 -> 0.93 NDCG@10 on the synthetic shop, and gained head queries nothing
    if rewrite is not None and (rewrite.kind == "longtail" or rewrite.used_llm):
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
        filters=with_rewrite(
            request.filters, rewrite, served.catalog.price is not None, audience_keys(served, llm)
        ),
        explore=request.explore,
        request_id=new_request_id(request.request_id),
        llm_rerank=request.llm_rerank,
        explain=request.explain,
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
            price_min=rewrite.price_min,
            attributes={k: list(v) for k, v in rewrite.attributes},
            brand=rewrite.brand,
            confidence=None if rewrite.confidence is None else round(rewrite.confidence, 4),
            source=rewrite.source,
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
    call = call_of(served, request, rewrite, llm=deps.llm)
    result, reranking = await run_decided(served, call, deps)
    return respond(served, request, call, result, deps, rewrite, degraded + reranking)
