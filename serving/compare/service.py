"""Compare items, or guide a choice within a category, grounded in the catalog.

The facts come from the catalog in milliseconds and never wait for the model: a streaming
caller gets them as the first event, and the model's claims follow under their own deadline.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.compare import Comparer
from agents.llm import LLMError
from serving.compare.protocol import ClaimOut, CompareRequest, CompareResponse, FlaggedOut
from serving.lists.service import ListDeps
from serving.llm_steps import guarded
from serving.state import Served

ENDPOINT = "compare"


class CompareSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_COMPARE_", extra="ignore")

    deadline_s: float = Field(
        default=2.5,
        gt=0,
        le=120,
        description="How long the model's claims may take when the request names no deadline "
        "(the facts never wait); RECSYS_COMPARE_DEADLINE_S.",
    )


@lru_cache(maxsize=1)
def get_compare_settings() -> CompareSettings:
    return CompareSettings()


@dataclass
class Claims:
    claims: list[ClaimOut]
    flagged: list[FlaggedOut]
    degraded: list[str]


def _facts(comparer: Comparer, request: CompareRequest) -> dict[str, Any]:
    """The facts table; unknown ids or category raise CatalogError (422) before any model."""
    if request.item_ids is not None:
        return comparer.table(comparer.facts(request.item_ids))
    assert request.category is not None
    return comparer.guide_facts(request.category)


def _comparer(served: Served, deps: ListDeps) -> tuple[Comparer, list[str]]:
    """The comparer, and ["llm_unavailable"] when it has no model (facts only)."""
    llm = deps.llm
    try:
        if llm is None:
            raise LLMError("no LLM layer")
        return Comparer(llm.client("compare"), served.bundle.items, llm.compare_timeout_s), []
    except LLMError:
        deps.metrics.fallback(ENDPOINT, "llm_unavailable")
        return Comparer(None, served.bundle.items), ["llm_unavailable"]  # type: ignore[arg-type]


def deadline(request: CompareRequest, deps: ListDeps) -> float:
    """The request's deadline, else the server's, never past the LLM layer's own limit."""
    wanted = request.deadline_s or get_compare_settings().deadline_s
    return min(wanted, deps.llm.compare_timeout_s) if deps.llm is not None else wanted


async def claims(
    comparer: Comparer, request: CompareRequest, deps: ListDeps, deadline_s: float
) -> Claims:
    """The model's checked claims (or tips, for guidance), or none and why, by ``deadline_s``."""
    comparer.timeout_s = deadline_s

    def run() -> Claims:
        if request.item_ids is not None:
            checked = comparer.claims(comparer.facts(request.item_ids), request.question)
            return Claims(
                [ClaimOut(**vars(c), citation=c.cite()) for c in checked.supported],
                [FlaggedOut(claim=ClaimOut(**vars(c), citation=c.cite()), why=why)
                 for c, why in checked.flagged],
                [],
            )  # fmt: skip
        assert request.category is not None
        facts = comparer.guide_facts(request.category)
        kept, flagged = comparer.tips(request.category, facts, request.question)
        cite = request.category.split(">")[-1].strip()

        def out(t: dict[str, str]) -> ClaimOut:
            return ClaimOut(item_id=None, attribute=t["attribute"], value=t["value"],
                            text=t["advice"], citation=f"[{cite}.{t['attribute']}]")  # fmt: skip

        return Claims([out(t) for t in kept],
                      [FlaggedOut(claim=out(t), why=t["why"]) for t in flagged], [])  # fmt: skip

    done, degraded = await guarded(run, endpoint=ENDPOINT, deps=deps, timeout_s=deadline_s)
    return done if done is not None else Claims([], [], degraded)


async def compare(served: Served, request: CompareRequest, deps: ListDeps) -> CompareResponse:
    """One JSON document: the facts, and the claims that came within the deadline."""
    comparer, degraded = _comparer(served, deps)
    facts = _facts(comparer, request)
    response = CompareResponse(
        model_version=served.version, facts=facts, claims=[], flagged=[], degraded=degraded
    )
    if not degraded:
        got = await claims(comparer, request, deps, deadline(request, deps))
        response.claims, response.flagged, response.degraded = got.claims, got.flagged, got.degraded
    return response


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, default=str)}\n\n"


async def prepare_events(
    served: Served, request: CompareRequest, deps: ListDeps
) -> AsyncIterator[str]:
    """The facts are read (and bad ids refused, 422) before the stream starts; the events
    then are ``facts``, ``claims`` and ``done``."""
    comparer, degraded = _comparer(served, deps)
    facts = _facts(comparer, request)
    limit = deadline(request, deps)

    async def events() -> AsyncIterator[str]:
        yield event("facts", {"model_version": served.version, "facts": facts})
        got = Claims([], [], degraded)
        if not degraded:
            got = await claims(comparer, request, deps, limit)
        yield event("claims", {"claims": [c.model_dump() for c in got.claims],
                               "flagged": [f.model_dump() for f in got.flagged]})  # fmt: skip
        yield event("done", {"degraded": got.degraded})

    return events()
