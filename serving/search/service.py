"""Search: a query's candidates (BM25 + text encoder), then the decision layer."""

from __future__ import annotations

from recsys.decision.log import DecisionLog
from serving.metrics import ServingMetrics
from serving.search.protocol import SearchRequest, SearchResponse
from serving.shared import fill, new_request_id, request_of, run_list
from serving.state import Served

ENDPOINT = "search"
ANONYMOUS = ""  # never a catalog user: no purchases to exclude


def search(
    served: Served,
    request: SearchRequest,
    metrics: ServingMetrics,
    log: DecisionLog | None = None,
) -> SearchResponse:
    request_id = new_request_id(request.request_id)
    decision = request_of(request.k, request.filters, request.explore, request_id)
    result = run_list(
        served,
        served.search,
        {"user_id": request.user_id or ANONYMOUS, "query": request.query, "request": decision},
        endpoint=ENDPOINT,
        metrics=metrics,
        log=log,
    )
    terms = int(result.state["query_terms"])
    if terms == 0:
        metrics.fallback(ENDPOINT, "no_lexical_match")
    response = SearchResponse(
        model_version=served.version,
        request_id=request_id,
        query=request.query,
        sources=list(result.state["candidates"].sources),
        matched_terms=terms,
        items=[],
    )
    fill(response, served, result, request.explain, request.trace)
    return response
