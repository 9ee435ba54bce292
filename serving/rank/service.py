"""Rank caller-supplied items for a shopper with the bundle's ranker.

The given items become candidates shaped like retrieval's (``recsys/retrieval/given.py``), then
the bundle's ranker orders them; without a ranker, the fused order is the answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys.artifacts import Bundle
from recsys.decision.log import DecisionLog
from recsys.pipeline import Pipeline
from recsys.ranking.ranker import RankingStage
from recsys.retrieval.given import GivenCandidatesStage
from recsys.retrieval.retriever import HistoryStage
from serving.metrics import ServingMetrics
from serving.rank.protocol import RankRequest, RankResponse
from serving.shared import (
    FilterSpec,
    count_fallbacks,
    fill,
    new_request_id,
    request_of,
    run_list,
)
from serving.state import Served

ENDPOINT = "rank"
ANONYMOUS = ""  # the pipeline's user_id for requests without one: never a catalog user


def rank_pipeline(bundle: Bundle, ranker: str | None) -> Pipeline:
    """user_id, given -> history -> given candidates [-> ranking with ``ranker``]."""
    n_items = len(bundle.item_ids)
    stages: list[Any] = [
        HistoryStage(bundle.user_index(), bundle.sequences),
        GivenCandidatesStage(bundle.retriever, n_items),
    ]
    if bundle.ranking is not None and ranker is not None:
        model = bundle.ranking.rankers[ranker]
        stages.append(RankingStage(model, bundle.ranking.features, n_items))
    return Pipeline(stages, inputs=["user_id", "given"])


def rank(
    served: Served,
    request: RankRequest,
    metrics: ServingMetrics,
    log: DecisionLog | None = None,
) -> RankResponse:
    known: list[int] = []
    unknown: list[str] = []
    for item_id in dict.fromkeys(request.item_ids):  # distinct, in the given order
        idx = served.item_index.get(item_id)
        if idx is None:
            unknown.append(item_id)
        else:
            known.append(idx)
    user_id = request.user_id or ANONYMOUS
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
    # the caller chose these items: stock and purchase rules only when they ask for them
    filters = request.filters or FilterSpec(in_stock=False, exclude_purchased=False)
    decision = request_of(request.k, filters, explore=False, request_id=request_id)
    result = run_list(
        served,
        served.rank,
        {"user_id": user_id, "given": np.array(known, np.int64), "request": decision},
        endpoint=ENDPOINT,
        metrics=metrics,
        log=log,
    )
    response.cold_start = bool(result.state["cold_start"])
    count_fallbacks(metrics, ENDPOINT, response.cold_start, served.ranker)
    fill(response, served, result, request.explain, request.trace)
    return response
