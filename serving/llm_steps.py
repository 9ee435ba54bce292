"""LLM steps on a list endpoint's answer, each bounded by its deadline and never fatal.

The pipeline runs first and its answer stands; an LLM step can only reorder the top of it (and
add reasons). A timeout, error or unloadable model returns the pipeline's answer with the step
named in ``degraded``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from agents.layer import LLMLayer, attempt
from agents.llm import LLMError, LLMTimeout
from recsys.decision import Decision
from serving.state import Served

if TYPE_CHECKING:
    from serving.lists.service import ListDeps

T = TypeVar("T")


def reorder(decision: Decision, head: np.ndarray, reasons: dict[int, str]) -> Decision:
    """``decision`` with its first ``len(head)`` shown items in the order ``head``."""
    shown = decision.shown
    n = len(head)
    order = np.concatenate([head, np.arange(n, len(shown))]).astype(np.int64)
    entries = []
    for slot, pos in enumerate(order):
        entry = shown[int(pos)]
        reason = entry.reason
        if int(pos) in reasons and reasons[int(pos)]:
            reason += f"; llm: {reasons[int(pos)]}"
        entries.append(entry._replace(position=slot, reason=reason))
    return replace(
        decision,
        ids=decision.ids[order],
        scores=decision.scores[order],
        propensity=decision.propensity[order],
        slots=decision.slots[order],
        shown=entries,
    )


def rerank_weight(served: Served, default: float) -> float:
    """The blend weight ``recsys tune-llm`` chose on validation users and stored in the
    bundle; ``default`` (the setting, 0 unless changed) when the bundle was never tuned."""
    tuned = served.bundle.manifest.get("llm", {}).get("rerank", {})
    return float(tuned.get("weight", default))


async def llm_rerank(
    served: Served,
    deps: ListDeps,
    decision: Decision,
    context: str,
    endpoint: str,
    k: int | None = None,
) -> tuple[Decision, list[str]]:
    """The decision with its top reordered by the LLM's scores blended in with the bundle's
    weight, cut to ``k``, and reasons from the LLM on the shown items; or as it was + why not.

    The scoring pass and the reasons have deadlines of their own: a late order keeps the
    decided one (``llm_timeout``); late reasons keep the order and its evidence reasons
    (``llm_reasons_timeout``)."""
    llm = deps.llm
    k = len(decision.ids) if k is None else k
    if llm is None:
        return truncate(decision, k), ["llm_unavailable"]
    if len(decision.ids) < 2:
        return decision, []
    config = llm.rerank_config
    weight = rerank_weight(served, config.weight)
    degraded: list[str] = []
    if weight > 0:

        def score() -> Decision:
            out = llm.reranker(served).rerank(decision.ids, context, weight)
            return reorder(decision, out.order, {})

        reranked, degraded = await guarded(
            score, endpoint=endpoint, deps=deps, timeout_s=config.timeout_s, purpose="rerank"
        )
        decision = decision if reranked is None else reranked
    decision = truncate(decision, k)
    if degraded:  # a model too slow to score is too slow to explain
        return decision, degraded
    if not wants_reasons(config.reasons, llm):
        return decision, []
    shown = [int(i) for i in decision.ids[:k]]
    reasons, late = await guarded(
        lambda: llm.reranker(served).reasons(shown, context),
        endpoint=endpoint, deps=deps, timeout_s=config.reasons_timeout_s, purpose="rerank",
    )  # fmt: skip
    if reasons is None:
        return decision, [kind.replace("llm_", "llm_reasons_") for kind in late]
    return reorder(decision, np.arange(len(shown)), reasons), []


def wants_reasons(mode: str, llm: LLMLayer) -> bool:
    if mode != "auto":
        return mode == "on"
    try:
        return not llm.client("rerank").name.startswith("llama_cpp")
    except LLMError:
        return False


async def guarded(
    step: Callable[[], T], *, endpoint: str, deps: ListDeps, timeout_s: float, purpose: str = ""
) -> tuple[T | None, list[str]]:
    """:func:`agents.layer.attempt` on the LLM pool (off the event loop and off the shared
    thread pool), bounded by ``timeout_s`` however long it queued; counts what degraded."""
    try:
        result, degraded = await deps.llm_pool.run(lambda: attempt(step), timeout_s)
    except LLMTimeout:
        result, degraded = None, ["llm_timeout"]
    for kind in degraded:
        deps.metrics.fallback(endpoint, kind)
        if deps.llm_metrics is not None and purpose:
            deps.llm_metrics.degrade(purpose, kind)
    return result, degraded


def history_context(served: Served, history: np.ndarray, last: int = 5) -> str:
    """What a shopper's recent items were, for the reranker's prompt."""
    if not len(history):
        return "a new shopper with no history"
    titles = [served.bundle.items.row(int(i)).get("title") or served.bundle.item_ids[int(i)]
              for i in history[-last:]]  # fmt: skip
    return "recently looked at: " + "; ".join(str(t) for t in titles)


def truncate(decision: Decision, k: int) -> Decision:
    """Only the first ``k`` shown items (the rest of the entries, removals, stay)."""
    shown = decision.shown
    if len(shown) <= k:
        return decision
    return replace(
        decision,
        ids=decision.ids[:k],
        scores=decision.scores[:k],
        propensity=decision.propensity[:k],
        slots=decision.slots[:k],
        shown=shown[:k],
    )
