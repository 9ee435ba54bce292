"""What the ranking endpoints share: the scored-item model and reading a pipeline result."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recsys.decision import Decision, DecisionRequest, Filters
from recsys.decision.log import DecisionLog, decision_record
from recsys.pipeline import Pipeline, Result
from recsys.retrieval.merge import CandidateBatch

if TYPE_CHECKING:
    from agents.layer import LLMLayer
    from serving.metrics import ServingMetrics
    from serving.state import Served


class ScoredItem(BaseModel):
    item_id: str = Field(description="Catalog item id.")
    score: float = Field(
        description="The ranker's score; the fused retrieval (RRF) score when no ranker serves. "
        "Items are ordered by it, best first."
    )
    reasons: list[str] | None = Field(
        default=None,
        description="Why the item is here (explain=true only), e.g. 'found by covisit, als'.",
    )


class FilterSpec(BaseModel):
    """Caller filters, applied after ranking; removed items are reported in the decision log."""

    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not 5: the schema says

    price_min: float | None = Field(default=None, ge=0, description="Lowest price allowed.")
    price_max: float | None = Field(default=None, ge=0, description="Highest price allowed.")
    categories: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Category paths such as 'Fashion > Outerwear'; an item under any passes.",
    )
    brands: list[str] = Field(
        default_factory=list, max_length=50, description="Brands allowed (any case)."
    )
    in_stock: bool | None = Field(
        default=None,
        description="true: in-stock items only; false: out-of-stock ones too; "
        "null: the server's rule (hides them by default).",
    )
    exclude_purchased: bool | None = Field(
        default=None,
        description="Leave out what the shopper bought; null: the server's rule (on by default).",
    )
    exclude_item_ids: list[str] = Field(
        default_factory=list, max_length=1000, description="Item ids never to return."
    )

    def to_filters(self) -> Filters:
        """The decision layer's filters; a price range upside down is a CatalogError (422)."""
        return Filters(
            price_min=self.price_min,
            price_max=self.price_max,
            categories=tuple(self.categories),
            brands=tuple(self.brands),
            in_stock=self.in_stock,
            exclude_purchased=self.exclude_purchased,
            exclude_item_ids=tuple(self.exclude_item_ids),
        )


class DecisionLogEntry(BaseModel):
    item_id: str = Field(description="Catalog item id.")
    action: Literal["shown", "removed"] = Field(description="Whether the item made the list.")
    reason: str = Field(description="Why: 'ranked', 'exploration ...', 'out of stock', ...")
    score: float = Field(description="The item's score when the decision was made.")
    position: int | None = Field(default=None, description="0-based slot (shown items).")
    propensity: float | None = Field(
        default=None, description="Probability the item was shown in this slot (shown items)."
    )


def request_of(
    k: int | None, filters: FilterSpec | None, explore: bool, request_id: str
) -> DecisionRequest:
    spec = filters or FilterSpec()
    return DecisionRequest(
        k=k if k is not None else 1_000_000,
        filters=spec.to_filters(),
        explore=explore,
        request_id=request_id,
    )


def reasons(batch: CandidateBatch, slot: int, decided: str) -> list[str]:
    found = batch.found_by(0, slot)
    out = [f"found by {', '.join(found)}"] if found else ["not found by any source (as given)"]
    return out + ([decided] if decided != "ranked" else [])


def scored_items(item_ids: np.ndarray, state: Mapping[str, Any], explain: bool) -> list[ScoredItem]:
    """The decision's shown items as response items, in order."""
    decision: Decision = state["decision"]
    batch: CandidateBatch = state["candidates"]
    shown = [e for e in decision.entries if e.action == "shown"]
    out = []
    for entry, slot in zip(shown, decision.slots, strict=True):
        item = ScoredItem(item_id=str(item_ids[entry.item]), score=entry.score)
        if explain:  # set only when asked, so it is absent from the JSON otherwise
            item.reasons = reasons(batch, int(slot), entry.reason)
        out.append(item)
    return out


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


def candidate_count(state: Mapping[str, Any]) -> int:
    return int((state["candidates"].ids[0] >= 0).sum())


class ListResponse(BaseModel):
    """What every list endpoint answers with."""

    model_version: str = Field(description="Version of the artifact bundle that answered.")
    request_id: str = Field(description="Id of this decision in the decision log.")
    items: list[ScoredItem] = Field(description="The items shown, best first.")
    decisions: list[DecisionLogEntry] | None = Field(
        default=None,
        description="Why each item was shown or removed (explain=true only): shown items in "
        "order, then removed ones, best score first.",
    )
    trace: dict[str, float] | None = Field(
        default=None, description="{stage: milliseconds} (trace=true only)."
    )
    degraded: list[str] = Field(
        default_factory=list,
        description="LLM steps that fell back to the non-LLM answer: llm_timeout, llm_error, "
        "llm_unavailable.",
    )


def decided_k(k: int, llm_rerank: bool, llm: LLMLayer | None) -> int:
    """How many items the pipeline decides: ``k``, or the reranker's top when one follows."""
    return max(k, llm.rerank_config.top_n) if (llm_rerank and llm is not None) else k


def new_request_id(given: str | None) -> str:
    return given or uuid.uuid4().hex


def run_list(
    served: Served,
    pipeline: Pipeline,
    inputs: dict[str, Any],
    *,
    endpoint: str,
    metrics: ServingMetrics,
    log: DecisionLog | None,
) -> Result:
    """Run one list pipeline on the served bundle, count it, and log its decision (pass
    ``log=None`` and call :func:`log_decision` later when an LLM step may reorder it)."""
    with served.lock:
        result = pipeline.run(inputs)
    state = result.state
    metrics.observe_pipeline(
        endpoint, result.trace, state["source_timings"], candidate_count(state)
    )
    log_decision(served, inputs, state["decision"], endpoint, log)
    return result


def log_decision(
    served: Served,
    inputs: Mapping[str, Any],
    decision: Decision,
    endpoint: str,
    log: DecisionLog | None,
) -> None:
    if log is None:
        return
    request: DecisionRequest = inputs["request"]
    log.append(
        decision_record(
            decision,
            served.bundle.item_ids,
            request_id=request.request_id,
            user_id=str(inputs["user_id"]),
            endpoint=endpoint,
            model_version=served.version,
        )
    )


async def run_decided(
    served: Served,
    pipeline: Pipeline,
    inputs: dict[str, Any],
    *,
    k: int,
    llm_rerank: bool,
    context: Callable[[Result], str],
    endpoint: str,
    metrics: ServingMetrics,
    log: DecisionLog | None,
    llm: LLMLayer | None,
) -> tuple[Result, list[str]]:
    """:func:`run_list`, then, when asked, the LLM rerank of its top cut to ``k``; the decision
    is logged once, as shown. Returns the result and what degraded."""
    from serving.llm_steps import llm_rerank as rerank
    from serving.llm_steps import truncate

    result = run_list(
        served, pipeline, inputs, endpoint=endpoint, metrics=metrics,
        log=None if llm_rerank else log,
    )  # fmt: skip
    if not llm_rerank:
        return result, []
    decision, degraded = await rerank(
        served, llm, result.state["decision"], context(result), endpoint, metrics
    )
    result.state["decision"] = truncate(decision, k)
    log_decision(served, inputs, result.state["decision"], endpoint, log)
    return result, degraded


def count_fallbacks(
    metrics: ServingMetrics, endpoint: str, cold_start: bool, ranker: str | None
) -> None:
    """The non-LLM fallbacks a ranked list can take: cold start, no ranker."""
    if cold_start:
        metrics.fallback(endpoint, "cold_start")
    if ranker is None:
        metrics.fallback(endpoint, "no_ranker")


def fill(
    response: ListResponse, served: Served, result: Result, explain: bool, trace: bool
) -> None:
    """Set the items, and the decision log and trace when asked (absent from the JSON otherwise)."""
    item_ids = served.bundle.item_ids
    response.items = scored_items(item_ids, result.state, explain)
    if explain:
        response.decisions = decision_entries(item_ids, result.state["decision"])
    if trace:
        response.trace = trace_ms(result)
