"""What the ranking endpoints share: the scored-item model and reading a pipeline result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from recsys.pipeline import Result
from recsys.ranking.ranker import Ranked
from recsys.retrieval.merge import CandidateBatch


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


def ordered(state: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item indexes, scores, candidate slots) of a result, best first, empty slots dropped."""
    batch: CandidateBatch = state["candidates"]
    ranked: Ranked | None = state.get("ranked")
    if ranked is not None:
        ids, scores, slots = ranked.ids[0], ranked.scores[0], ranked.order[0]
    else:
        ids, scores = batch.ids[0], batch.fused[0]
        slots = np.arange(len(ids))
    keep = ids >= 0
    return ids[keep], scores[keep], slots[keep]


def reasons(batch: CandidateBatch, slot: int) -> list[str]:
    found = batch.found_by(0, slot)
    if not found:  # /v1/rank: a given item outside every source's list
        return ["not found by any source (ranked as given)"]
    return [f"found by {', '.join(found)}"]


def scored_items(
    item_ids: np.ndarray, state: Mapping[str, Any], k: int | None, explain: bool
) -> list[ScoredItem]:
    """The top ``k`` (all when None) of a pipeline result as response items."""
    ids, scores, slots = ordered(state)
    batch: CandidateBatch = state["candidates"]
    top = slice(0, k)
    out = []
    for i, score, slot in zip(ids[top], scores[top], slots[top], strict=True):
        item = ScoredItem(item_id=str(item_ids[i]), score=float(score))
        if explain:  # set only when asked, so it is absent from the JSON otherwise
            item.reasons = reasons(batch, int(slot))
        out.append(item)
    return out


def trace_ms(result: Result) -> dict[str, float]:
    """{stage: milliseconds} of a pipeline run."""
    return {stage: round(ms, 3) for stage, ms in result.trace}


def candidate_count(state: Mapping[str, Any]) -> int:
    return int((state["candidates"].ids[0] >= 0).sum())
