"""Rank caller-supplied items for a shopper with the bundle's ranker.

The given items become candidates shaped like retrieval's (``recsys/retrieval/given.py``), then
the bundle's ranker orders them; without a ranker, the fused order is the answer.
"""

from __future__ import annotations

import numpy as np

from serving.lists.protocol import FilterSpec
from serving.lists.service import (
    ListCall,
    ListDeps,
    count_fallbacks,
    fill,
    new_request_id,
    run_list,
)
from serving.rank.protocol import RankRequest, RankResponse
from serving.state import Served

ENDPOINT = "rank"
ANONYMOUS = ""  # the pipeline's user_id for requests without one: never a catalog user


def rank(served: Served, request: RankRequest, deps: ListDeps) -> RankResponse:
    known: list[int] = []
    unknown: list[str] = []
    for item_id in dict.fromkeys(request.item_ids):  # distinct, in the given order
        idx = served.item_index.get(item_id)
        if idx is None:
            unknown.append(item_id)
        else:
            known.append(idx)
    request_id = new_request_id(request.request_id)
    response = RankResponse(
        model_version=served.version,
        request_id=request_id,
        user_id=request.user_id,
        cold_start=True,
        ranker=served.ranker,
        items=[],
        unknown_item_ids=unknown,
    )
    if not known:  # nothing to rank: the answer is the report of unknown ids
        if request.trace:
            response.trace = {}
        return response
    call = ListCall(
        endpoint=ENDPOINT,
        pipeline=served.rank,
        inputs={"user_id": request.user_id or ANONYMOUS, "given": np.array(known, np.int64)},
        k=request.k if request.k is not None else len(known),
        # the caller chose these items: stock and purchase rules only when they ask for them
        filters=request.filters or FilterSpec(in_stock=False, exclude_purchased=False),
        request_id=request_id,
        explain=request.explain,
    )
    result = run_list(served, call, deps)
    response.cold_start = bool(result.state["cold_start"])
    count_fallbacks(deps, ENDPOINT, response.cold_start, served.ranker)
    fill(response, served, result, request.explain, request.trace, request.include_item)
    return response
