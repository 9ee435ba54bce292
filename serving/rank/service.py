"""Rank caller-supplied items for a shopper with the bundle's ranker.

The given items become candidates shaped like retrieval's (``recsys/retrieval/given.py``), then
the bundle's ranker orders them; without a ranker, the fused order is the answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys.artifacts import Bundle
from recsys.pipeline import Pipeline
from recsys.ranking.ranker import RankingStage
from recsys.retrieval.given import GivenCandidatesStage
from recsys.retrieval.retriever import HistoryStage
from serving.metrics import ServingMetrics
from serving.rank.protocol import RankRequest, RankResponse
from serving.shared import scored_items, trace_ms
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


def rank(served: Served, request: RankRequest, metrics: ServingMetrics) -> RankResponse:
    known: list[int] = []
    unknown: list[str] = []
    for item_id in dict.fromkeys(request.item_ids):  # distinct, in the given order
        idx = served.item_index.get(item_id)
        if idx is None:
            unknown.append(item_id)
        else:
            known.append(idx)
    user_id = request.user_id or ANONYMOUS
    response = RankResponse(
        model_version=served.version,
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
    with served.lock:
        result = served.rank.run({"user_id": user_id, "given": np.array(known, np.int64)})
    state = result.state
    response.cold_start = bool(state["cold_start"])
    response.items = scored_items(served.bundle.item_ids, state, request.k, request.explain)
    metrics.observe_pipeline(ENDPOINT, result.trace, state["source_timings"], len(known))
    if response.cold_start:
        metrics.fallback(ENDPOINT, "cold_start")
    if served.ranker is None:
        metrics.fallback(ENDPOINT, "no_ranker")
    if request.trace:
        response.trace = trace_ms(result)
    return response
