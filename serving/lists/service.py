"""Running a list pipeline for an endpoint: one :class:`ListCall` carries what the request asks
(k, filters, exploration, the LLM rerank) once, and :class:`ListDeps` what serves it (metrics,
the decision log, the LLM layer).

:func:`run_list` is the whole non-LLM path (pipeline, metrics, decision log); :func:`run_decided`
adds the LLM rerank of its top when asked, logging the decision once, as shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import TypeAdapter

from features.guarded import feature_reads
from recsys.decision import Decision, DecisionRequest, Filters
from recsys.decision.log import DecisionLog, deferred_record
from recsys.pipeline import Pipeline, Result
from recsys.ranking.explain import contributions
from recsys.retrieval.merge import CandidateBatch
from serving.batching import PipelineBatcher, run_alone
from serving.lists.details import item_details
from serving.lists.protocol import (
    DecisionLogEntry,
    FeatureContribution,
    FilterSpec,
    ListResponse,
    ScoredItem,
)
from serving.lists.reasons import Evidence, reasons
from serving.llm_metrics import LLMMetrics
from serving.llm_pool import LLMPool
from serving.llm_steps import llm_rerank, rerank_weight
from serving.request_ids import request_id as fresh_request_id

if TYPE_CHECKING:
    from agents.layer import LLMLayer
    from serving.experiments.service import ArmRouter, Routed
    from serving.metrics import ServingMetrics
    from serving.state import Served


@dataclass(frozen=True)
class ListDeps:
    """What a list endpoint is served with (the same for the HTTP routes and the agent)."""

    metrics: ServingMetrics
    log: DecisionLog | None = None
    llm: LLMLayer | None = None
    llm_pool: LLMPool = field(default_factory=LLMPool)  # LLM and chat work, bounded
    llm_metrics: LLMMetrics | None = None
    arms: ArmRouter | None = None  # experiment arms; None: every list from the served bundle
    batcher: PipelineBatcher | None = None  # None: each async request runs alone


@dataclass(frozen=True)
class ListCall:
    """One list request as a service runs it."""

    endpoint: str
    pipeline: Pipeline
    inputs: dict[str, Any]  # the pipeline's inputs except "request", which this call makes
    k: int  # items to show
    filters: FilterSpec | None = None
    explore: bool = False
    request_id: str = field(default_factory=fresh_request_id)
    llm_rerank: bool = False
    context: Callable[[Result], str] | None = None  # the reranker's view of the shopper
    explain: bool = False  # the ranker's feature contributions for the shown items, logged too

    def decision_request(self, llm: LLMLayer | None, weight: float = 0.0) -> DecisionRequest:
        """What the decision stage decides: ``k``, or the reranker's top when one follows and
        may move it (``weight`` > 0: with weight 0 the order stands, so only ``k`` is needed)."""
        k = self.k
        if self.llm_rerank and llm is not None and weight > 0:
            k = max(k, llm.rerank_config.top_n)
        return DecisionRequest(
            k=k,
            filters=Filters() if self.filters is None else self.filters.to_filters(),
            explore=self.explore,
            request_id=self.request_id,
        )


def new_request_id(given: str | None) -> str:
    return given or fresh_request_id()


def run_list(served: Served, call: ListCall, deps: ListDeps, log_now: bool = True) -> Result:
    """Run ``call``'s pipeline on the served bundle, count it, and (``log_now``) log its
    decision; an LLM step that may reorder it logs later, through :func:`log_decision`.

    While an experiment runs, the shopper's arm answers: its bundle (see :func:`answered_by`),
    its timing and failures counted for the arm's guardrail."""
    run = _Run.of(served, call, deps)
    try:
        result, degraded = run_alone(run.call.pipeline, run.served.lock, run.inputs)
    except Exception:
        run.failed(deps)
        raise
    return run.finish(deps, result, degraded, log_now)


async def run_list_batched(
    served: Served, call: ListCall, deps: ListDeps, log_now: bool = True
) -> Result:
    """:func:`run_list`, its pipeline run batched with the worker's other requests in hand
    (``deps.batcher``, :mod:`serving.batching`); the same answer."""
    if deps.batcher is None:
        return run_list(served, call, deps, log_now)
    run = _Run.of(served, call, deps)
    try:
        result, degraded = await deps.batcher.run(run.call.pipeline, run.served.lock, run.inputs)
    except Exception:
        run.failed(deps)
        raise
    return run.finish(deps, result, degraded, log_now)


@dataclass
class _Run:
    """One list call on its way through a pipeline: the arm that answers it, its inputs."""

    served: Served
    call: ListCall
    inputs: dict[str, Any]
    routed: Routed | None
    started: float

    @classmethod
    def of(cls, served: Served, call: ListCall, deps: ListDeps) -> _Run:
        routed = deps.arms.route(served, call) if deps.arms is not None else None
        if routed is not None:
            served, call = routed.served, routed.call
        weight = 0.0
        if call.llm_rerank and deps.llm is not None:
            weight = rerank_weight(served, deps.llm.rerank_config.weight)
        inputs = {**call.inputs, "request": call.decision_request(deps.llm, weight)}
        return cls(served, call, inputs, routed, time.perf_counter())

    def failed(self, deps: ListDeps) -> None:
        if self.routed is not None and deps.arms is not None:
            elapsed = time.perf_counter() - self.started
            deps.arms.observe(self.routed, self.call.endpoint, elapsed, failed=True)

    def finish(self, deps: ListDeps, result: Result, degraded: list[str], log_now: bool) -> Result:
        served, call, routed = self.served, self.call, self.routed
        state = result.state
        if routed is not None and deps.arms is not None:
            elapsed = time.perf_counter() - self.started
            deps.arms.observe(routed, call.endpoint, elapsed, failed=False)
            deps.arms.degraded(routed, degraded)
            deps.arms.shadows(routed, call.endpoint, self.inputs, deps.log)
            state[ROUTED] = routed
        state["degraded"] = degraded
        if call.explain:
            # the features were just read for the ranker, so a store failure shows up as
            # neutral features there too (features_unavailable) rather than as an error here
            with served.lock, feature_reads():
                state[CONTRIBUTIONS] = shown_contributions(served, state)
        for reason in degraded:
            deps.metrics.fallback(call.endpoint, reason)
        deps.metrics.observe_pipeline(
            call.endpoint, result.trace, state["source_timings"], candidate_count(state)
        )
        if log_now:
            log_decision(served, call, state["decision"], deps.log, arm=_arm(result),
                         contributions=state.get(CONTRIBUTIONS))  # fmt: skip
        return result


ROUTED = "experiment_arm"  # result-state key of the arm that answered (set after the run)
CONTRIBUTIONS = "contributions"  # result-state key: item -> the ranker's top feature shares


def shown_contributions(served: Served, state: Mapping[str, Any]) -> dict[int, list[Any]]:
    """item -> its top feature contributions to the serving ranker's score, for the shown
    items; empty when no ranker serves or it has no exact split (recsys.ranking.explain)."""
    ranking = served.bundle.ranking
    if served.ranker is None or ranking is None or "ranked" not in state:
        return {}  # the merged order, or a pipeline without a ranking stage (search)
    decision: Decision = state["decision"]
    shown = [e.item for e in decision.shown]
    got = contributions(ranking.rankers[served.ranker], state, len(served.bundle.item_ids),
                        ranking.features, [int(s) for s in decision.slots])  # fmt: skip
    return {} if got is None else dict(zip(shown, got, strict=True))


def answered_by(result: Result, served: Served) -> Served:
    """The bundle that answered ``result``: an experiment arm's, else ``served``."""
    routed: Routed | None = result.state.get(ROUTED)
    return routed.served if routed is not None else served


def _arm(result: Result) -> str | None:
    routed: Routed | None = result.state.get(ROUTED)
    return routed.arm.name if routed is not None else None


async def run_decided(served: Served, call: ListCall, deps: ListDeps) -> tuple[Result, list[str]]:
    """:func:`run_list`, then, when asked, the LLM rerank of its top cut to ``k``; the decision
    is logged once, as shown. Returns the result and what degraded."""
    result = await run_list_batched(served, call, deps, log_now=not call.llm_rerank)
    if not call.llm_rerank:
        return result, []
    served = answered_by(result, served)
    context = call.context(result) if call.context is not None else ""
    decision, degraded = await llm_rerank(
        served, deps, result.state["decision"], context, call.endpoint, call.k
    )
    result.state["decision"] = decision
    log_decision(served, call, decision, deps.log, arm=_arm(result),
                 contributions=result.state.get(CONTRIBUTIONS))  # fmt: skip
    routed = result.state.get(ROUTED)
    if routed is not None and deps.arms is not None:
        deps.arms.degraded(routed, degraded)
    return result, degraded


def log_decision(
    served: Served,
    call: ListCall,
    decision: Decision,
    log: DecisionLog | None,
    arm: str | None = None,
    shadow: bool = False,
    contributions: Mapping[int, list[Any]] | None = None,
) -> None:
    if log is None:
        return
    log.append(
        deferred_record(
            decision,
            served.bundle.item_ids,
            request_id=call.request_id,
            user_id=str(call.inputs["user_id"]),
            endpoint=call.endpoint,
            model_version=served.version,
            arm=arm,
            shadow=shadow,
            contributions=contributions,
        )
    )


def count_fallbacks(deps: ListDeps, endpoint: str, cold_start: bool, ranker: str | None) -> None:
    """The non-LLM fallbacks a ranked list can take: cold start, no ranker."""
    if cold_start:
        deps.metrics.fallback(endpoint, "cold_start")
    if ranker is None:
        deps.metrics.fallback(endpoint, "no_ranker")


def candidate_count(state: Mapping[str, Any]) -> int:
    return int(np.count_nonzero(state["candidates"].ids[0] >= 0))


def scored_items(
    served: Served, state: Mapping[str, Any], explain: bool, include_item: bool = False
) -> list[ScoredItem]:
    """The decision's shown items as response items, in order."""
    item_ids = served.bundle.item_ids
    decision: Decision = state["decision"]
    batch: CandidateBatch = state["candidates"]
    shown = decision.shown
    evidence = Evidence.of(served, state, [e.item for e in shown]) if explain else None
    shares: Mapping[int, list[Any]] = state.get(CONTRIBUTIONS) or {}
    out = []
    for entry, slot in zip(shown, decision.slots, strict=True):
        item: dict[str, Any] = {
            "item_id": str(item_ids[entry.item]),
            "score": entry.score,
            "position": entry.position,
        }
        # set only when asked, so they are absent from the JSON otherwise
        if evidence is not None:
            item["reasons"] = reasons(evidence, batch, int(slot), entry.item, entry.reason)
        if include_item:
            item["item"] = item_details(served.catalog, entry.item)
        if explain and entry.item in shares:
            item["contributions"] = [FeatureContribution(**vars(c)) for c in shares[entry.item]]
        out.append(item)
    return _SCORED_ITEMS.validate_python(out)  # one validation for the list: half the CPU


_SCORED_ITEMS = TypeAdapter(list[ScoredItem])


def decision_entries(item_ids: np.ndarray, decision: Decision) -> list[DecisionLogEntry]:
    return [
        DecisionLogEntry(
            item_id=str(item_ids[e.item]),
            action=e.action,
            reason=e.reason,
            score=e.score,
            position=e.position,
            propensity=e.propensity,
        )
        for e in decision.entries
    ]


def trace_ms(result: Result) -> dict[str, float]:
    """{stage: milliseconds} of a pipeline run."""
    return {stage: round(ms, 3) for stage, ms in result.trace}


def fill(
    response: ListResponse,
    served: Served,
    result: Result,
    explain: bool,
    trace: bool,
    include_item: bool = False,
) -> None:
    """Set the items (with their catalog details when asked), and the decision log and trace
    when asked (absent from the JSON otherwise). An experiment arm's answer names the arm and
    its bundle's version."""
    served = answered_by(result, served)
    arm = _arm(result)
    if arm is not None:
        response.arm = arm
        response.model_version = served.version
    item_ids = served.bundle.item_ids
    more = [r for r in result.state.get("degraded", ()) if r not in response.degraded]
    if more:  # assigned only then: /v1/rank leaves unset fields out of its JSON
        response.degraded = [*response.degraded, *more]
    response.items = scored_items(served, result.state, explain, include_item)
    if explain:
        response.decisions = decision_entries(item_ids, result.state["decision"])
    if trace:
        response.trace = trace_ms(result)
