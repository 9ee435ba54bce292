"""Compare items, or guide a choice within a category, grounded in the catalog."""

from __future__ import annotations

from typing import Any

from agents.compare import Comparer
from agents.llm import LLMError
from serving.compare.protocol import ClaimOut, CompareRequest, CompareResponse, FlaggedOut
from serving.lists.service import ListDeps
from serving.llm_steps import guarded
from serving.state import Served

ENDPOINT = "compare"


def _facts(comparer: Comparer, request: CompareRequest) -> dict[str, Any]:
    if request.item_ids is not None:
        return comparer.table(comparer.facts(request.item_ids))
    assert request.category is not None
    return comparer.guide_facts(request.category)


async def compare(served: Served, request: CompareRequest, deps: ListDeps) -> CompareResponse:
    llm, metrics = deps.llm, deps.metrics
    response = CompareResponse(
        model_version=served.version, facts={}, claims=[], flagged=[], degraded=[]
    )
    try:
        if llm is None:
            raise LLMError("no LLM layer")
        comparer = Comparer(llm.client(), served.bundle.items, llm.compare_timeout_s)
    except LLMError:
        metrics.fallback(ENDPOINT, "llm_unavailable")
        response.facts = _facts(Comparer(None, served.bundle.items), request)  # type: ignore[arg-type]
        response.degraded = ["llm_unavailable"]
        return response

    def run() -> bool:
        if request.item_ids is not None:
            response.facts, checked = comparer.compare(request.item_ids, request.question)
            response.claims = [ClaimOut(**vars(c), citation=c.cite()) for c in checked.supported]
            response.flagged = [
                FlaggedOut(claim=ClaimOut(**vars(c), citation=c.cite()), why=why)
                for c, why in checked.flagged
            ]
        else:
            assert request.category is not None
            response.facts, kept, flagged = comparer.guide(request.category, request.question)
            cite = request.category.split(">")[-1].strip()
            response.claims = [
                ClaimOut(item_id=None, attribute=t["attribute"], value=t["value"],
                         text=t["advice"], citation=f"[{cite}.{t['attribute']}]")
                for t in kept
            ]  # fmt: skip
            response.flagged = [
                FlaggedOut(claim=ClaimOut(item_id=None, attribute=t["attribute"],
                                          value=t["value"], text=t["advice"],
                                          citation=f"[{cite}.{t['attribute']}]"), why=t["why"])
                for t in flagged
            ]  # fmt: skip
        return True

    done, response.degraded = await guarded(
        run, endpoint=ENDPOINT, deps=deps, timeout_s=llm.compare_timeout_s
    )
    if not done:
        response.facts = _facts(comparer, request)  # unknown ids/category raise CatalogError
    return response
