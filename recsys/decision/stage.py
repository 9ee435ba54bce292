"""The decision stage: from ranked candidates to the list shown, with the reason for every item.

Order: caller filters and catalog rules remove items (each with its reason) -> business rules
boost or bury -> diversity (MMR reorder, per-leaf and per-category caps) -> exploration
(epsilon-greedy, propensity of every shown item). The :class:`Decision` it writes is the whole
story of one list: shown items with scores and propensities, and removed ones with why.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, NamedTuple

import numpy as np

from recsys.catalog import Catalog
from recsys.data.contract import EVENTS
from recsys.data.sequences import Sequences
from recsys.decision.config import DecisionConfig
from recsys.decision.filters import Filters, removal_reasons
from recsys.decision.policy import apply_rules, capped, explore, mmr_order
from recsys.retrieval.merge import CandidateBatch

PURCHASE = EVENTS.index("purchase")


@dataclass(frozen=True)
class DecisionRequest:
    k: int = 10
    filters: Filters = field(default_factory=Filters)
    explore: bool = True  # False: the greedy list, whatever the configured epsilon
    request_id: str = ""  # seeds exploration, so a logged request can be replayed


class DecisionEntry(NamedTuple):
    """One candidate's fate. A named tuple, not a frozen dataclass: a request makes about 60
    (every removed candidate has one) and a tuple is built in a third of the time."""

    item: int  # item index
    action: Literal["shown", "removed"]
    reason: str
    score: float
    position: int | None = None  # 0-based slot, shown items only
    propensity: float | None = None  # shown items only


@dataclass(frozen=True)
class Removed:
    """The candidates a decision removed, as arrays; their entries are made on first use.

    A request removes about 50 candidates (bought, out of stock, capped...) and shows 10. The
    response reads only the shown ones; the removed ones' entries are read by the decision
    log's writer thread and by explanations, so a request does not make them.
    """

    ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # (R,) item indexes
    scores: np.ndarray = field(default_factory=lambda: np.empty(0))  # (R,) float64
    reasons: np.ndarray = field(default_factory=lambda: np.empty(0, object))  # (R,) str
    more: tuple[DecisionEntry, ...] = ()  # removed entries made already (category caps)

    def entries(self, at_least: float | None = None) -> list[DecisionEntry]:
        """The removed entries, best score first (equal scores: arrays, then ``more``); only
        those scoring ``at_least`` or more when given (the decision log's)."""
        ids, scores, reasons, more = self.ids, self.scores, self.reasons, list(self.more)
        if at_least is not None:
            keep = scores >= at_least
            ids, scores, reasons = ids[keep], scores[keep], reasons[keep]
            more = [e for e in more if e.score >= at_least]
        # Python values first: walking numpy arrays makes a numpy scalar per element
        removed = [
            DecisionEntry(i, "removed", str(r), s)
            for i, s, r in zip(ids.tolist(), scores.tolist(), reasons.tolist(), strict=True)
        ]
        removed += more
        removed.sort(key=lambda e: -e.score)
        return removed


@dataclass(frozen=True)
class Decision:
    ids: np.ndarray  # (k',) item indexes shown, k' <= k
    scores: np.ndarray  # (k',) score after rules
    propensity: np.ndarray  # (k',)
    slots: np.ndarray  # (k',) slot in the merged candidate list (for per-source reasons)
    shown: list[DecisionEntry]  # the shown items' entries, in order
    removed: Removed  # the removed candidates, with why
    considered: int  # candidates the decision looked at

    @cached_property
    def entries(self) -> list[DecisionEntry]:
        """Shown items in order, then removed ones, best score first."""
        return [*self.shown, *self.removed.entries()]


def ordered_candidates(state: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item indexes, scores, merged-list slots) best first, empty slots dropped."""
    batch: CandidateBatch = state["candidates"]
    ranked = state.get("ranked")
    if ranked is not None:
        ids, scores, slots = ranked.ids[0], ranked.scores[0], ranked.order[0]
    else:
        ids, scores = batch.ids[0], batch.fused[0]
        slots = np.arange(len(ids))
    keep = ids >= 0
    return ids[keep], scores[keep], slots[keep]


@dataclass
class PurchaseLookup:
    """A user's purchased items: training purchases plus purchases from live events."""

    user_index: Mapping[str, int]
    sequences: Sequences
    live: Any = None  # recsys.events.SessionState (its purchased(user_id)); None = none

    def __call__(self, user_id: str) -> set[int]:
        out: set[int] = set()
        row = self.user_index.get(user_id)
        if row is not None:
            lo, hi = self.sequences.indptr[row], self.sequences.indptr[row + 1]
            strongest = self.sequences.strength[lo:hi]
            out.update(self.sequences.items[lo:hi][strongest == PURCHASE].tolist())
        if self.live is not None:
            out.update(self.live.purchased(user_id))
        return out


@dataclass
class DecisionStage:
    catalog: Catalog
    config: DecisionConfig
    purchases: PurchaseLookup
    ranked: bool = True  # whether the pipeline has a ranking stage before this one
    seed: int = 0
    name: str = "decision"
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ("decision",)

    def __post_init__(self) -> None:
        self.reads = ("user_id", "request", "candidates", *(("ranked",) if self.ranked else ()))
        self.item_index = self.catalog.index
        # rules naming a brand or category the catalog lacks fail here, when a bundle loads
        probe = np.arange(min(1, len(self.catalog)))
        apply_rules(self.catalog, self.config, probe, np.zeros(len(probe)), self.item_index)
        capped(self.catalog, self.config, probe, 1)

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        request: DecisionRequest = state["request"]
        ids, scores, slots = ordered_candidates(state)
        purchased = self.purchases(str(state["user_id"]))
        why, keep = removal_reasons(
            self.catalog, request.filters, self.config, ids, purchased, self.item_index
        )
        gone = ~keep
        filtered = (ids[gone], scores[gone].astype(np.float64), why[gone])
        ids, scores, slots = ids[keep], scores[keep], slots[keep]
        ids, scores, notes, slots = self._rules(ids, scores, slots)
        k = request.k
        if self.config.diversity.method == "mmr" and len(ids):
            depth = min(len(ids), max(4 * k, 50))
            head = mmr_order(
                self.catalog, ids[:depth], scores[:depth], self.config.diversity.mmr_lambda, depth
            )
            order = np.concatenate([head, np.arange(depth, len(ids))])
            ids, scores, slots = ids[order], scores[order], slots[order]
            notes = [notes[i] for i in order]
        kept, skipped = capped(self.catalog, self.config, ids, k)
        removed = Removed(*filtered, more=tuple(
            DecisionEntry(int(ids[p]), "removed", reason, float(scores[p]))
            for p, reason in skipped.items()
        ))  # fmt: skip
        eligible = (
            np.setdiff1d(np.arange(len(ids)), list(skipped), assume_unique=True)
            if skipped
            else np.arange(len(ids))
        )
        # eligible is sorted (setdiff1d) and holds every kept position: their ranks in it
        greedy = np.searchsorted(eligible, np.asarray(kept, dtype=np.int64)).astype(np.int64)
        settings = self.config.exploration
        if not request.explore:
            settings = type(settings)(epsilon=0.0, pool=settings.pool)
        seed = [self.seed, zlib.crc32(request.request_id.encode())]
        drawn = explore(greedy, len(eligible), settings, lambda: np.random.default_rng(seed))
        shown = eligible[drawn.positions]
        entries = []
        for slot, (pos, p, was_drawn) in enumerate(
            zip(shown, drawn.propensity, drawn.explored, strict=True)
        ):
            reason = "exploration (epsilon-greedy draw)" if was_drawn else "ranked"
            if notes[pos]:
                reason += f"; {notes[pos]}"
            entries.append(
                DecisionEntry(int(ids[pos]), "shown", reason, float(scores[pos]), slot, float(p))
            )
        decision = Decision(
            ids=ids[shown],
            scores=scores[shown],
            propensity=drawn.propensity,
            slots=slots[shown],
            shown=entries,
            removed=removed,
            considered=len(keep),
        )
        return {"decision": decision}

    def _rules(
        self, ids: np.ndarray, scores: np.ndarray, slots: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[str | None], np.ndarray]:
        if not (self.config.boosts or self.config.bury):
            return ids, scores, [None] * len(ids), slots
        slot_of = dict(zip(ids.tolist(), slots.tolist(), strict=True))
        ids, scores, notes = apply_rules(self.catalog, self.config, ids, scores, self.item_index)
        return ids, scores, notes, np.array([slot_of[i] for i in ids.tolist()], dtype=np.int64)
