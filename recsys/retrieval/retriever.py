"""The retrieval stage: run every source for a batch of histories and merge their lists.

The same :class:`Retriever` serves one request (a batch of one, through
:class:`RetrievalStage`) and whole evaluation sets (large batches), so what is evaluated is
exactly what is served.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from recsys.data.sequences import Sequences
from recsys.retrieval.cache import CandidateCache
from recsys.retrieval.merge import CandidateBatch, SourceLists, merge
from recsys.retrieval.sources import CandidateSource

# Shares of the merged list each source's own top items are guaranteed (renormalised over the
# sources a bundle has). Attributes reach items the others rank low, so its share buys recall
# even though its NDCG is the lowest: on Beauty validation, recall@500 0.429 -> 0.453.
DEFAULT_QUOTAS: dict[str, float] = {
    "sasrec": 0.25,
    "covisit": 0.20,
    "als": 0.20,
    "attributes": 0.15,
    "text": 0.10,
    "popular": 0.10,
}


@dataclass(frozen=True)
class RetrievalConfig:
    total: int = 500  # merged candidates per request
    depth: int = 500  # how far down each source's own list is read
    quotas: tuple[tuple[str, float], ...] = tuple(DEFAULT_QUOTAS.items())
    # How much each source's ranks count in the merged order; `recsys train` sets them to the
    # sources' validation NDCG@10. Empty = the quotas.
    fusion_weights: tuple[tuple[str, float], ...] = ()
    # Share of `total` the quotas guarantee to each source's own head; the rest goes to the
    # fill. Fill weights (per source, log-rank; empty = the fused order fills): both chosen on
    # validation users at training (recsys.retrieval.tune), per dataset.
    quota_share: float = 1.0
    fill_weights: tuple[tuple[str, float], ...] = ()
    # Co-visitation links from this many latest history items to each candidate
    # (CandidateBatch.links); set by training when the rankers read them, 0 = none.
    links: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.quota_share <= 1.0:
            raise ValueError(f"quota_share must be in [0, 1], got {self.quota_share}")
        bad = {name: w for name, w in self.fill_weights if w < 0}
        if bad:
            raise ValueError(f"fill weights must be non-negative, got {bad}")
        if self.links < 0:
            raise ValueError(f"links must be >= 0 (0 = none), got {self.links}")

    def quota_map(self, sources: Sequence[str]) -> dict[str, float]:
        given = dict(self.quotas)
        # A source with no configured quota still gets a fair share rather than none.
        default = min(given.values()) if given else 1.0
        return {name: given.get(name, default) for name in sources}


@dataclass
class Retriever:
    sources: list[CandidateSource]
    config: RetrievalConfig = field(default_factory=RetrievalConfig)

    def __post_init__(self) -> None:
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate source names in {names}")
        if not any(not s.needs_history for s in self.sources):
            raise ValueError(
                f"no cold-start source among {names}: add one that needs no history (popular)"
            )

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]

    def source_lists(
        self, histories: Sequences, depth: int | None = None
    ) -> tuple[dict[str, SourceLists], dict[str, float]]:
        """Each source's own top list, and the milliseconds it took."""
        lists: dict[str, SourceLists] = {}
        timings: dict[str, float] = {}
        for source in self.sources:
            started = time.perf_counter()
            lists[source.name] = source.top(histories, depth or self.config.depth)
            timings[source.name] = (time.perf_counter() - started) * 1000.0
        return lists, timings

    def merge(
        self, lists: Mapping[str, SourceLists], histories: Sequences | None = None
    ) -> CandidateBatch:
        """The merged list from the sources' own lists (each read ``config.depth`` deep), with
        co-visitation links for the rankers when the ``histories`` they came from are given."""
        cfg = self.config
        heads = {n: SourceLists(s.ids[:, : cfg.depth], s.scores[:, : cfg.depth])
                 for n, s in lists.items()}  # fmt: skip
        weights = dict(cfg.fusion_weights) or None
        fill = dict(cfg.fill_weights) or None
        guaranteed = round(cfg.total * cfg.quota_share)
        batch = merge(
            heads, cfg.quota_map(self.names), cfg.total, self.names, weights, fill, guaranteed
        )
        return batch if histories is None else self.with_links(batch, histories)

    def with_links(self, batch: CandidateBatch, histories: Sequences) -> CandidateBatch:
        """``batch`` with ``config.links`` co-visitation links (``CandidateBatch.links``) from
        the first source that gives them (zeros where none does); unchanged where none are
        asked for."""
        k = self.config.links
        if not k:
            return batch
        for source in self.sources:
            link_weights = getattr(source.model, "link_weights", None)
            if link_weights is not None:
                return replace(batch, links=link_weights(histories, batch.ids, k))
        return replace(batch, links=np.zeros((*batch.ids.shape, k), dtype=np.float32))

    def retrieve(self, histories: Sequences) -> tuple[CandidateBatch, dict[str, float]]:
        lists, timings = self.source_lists(histories)
        started = time.perf_counter()
        merged = self.merge(lists, histories)
        timings["merge"] = (time.perf_counter() - started) * 1000.0
        return merged, timings


def history_of(items: Sequence[int] | np.ndarray, n_items: int) -> Sequences:
    """A batch of one history, for single requests."""
    return histories_of([items], n_items)


def histories_of(histories: Sequence[Sequence[int] | np.ndarray], n_items: int) -> Sequences:
    """One row per request's history (item indexes, oldest first), for a batch of requests."""
    arrays = [np.asarray(h, dtype=np.int32) for h in histories]
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    indptr = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    items = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int32)
    ts = np.arange(len(items), dtype=np.int64) - np.repeat(indptr[:-1], lengths)  # per row
    return Sequences(indptr, items, ts, np.zeros(len(items), dtype=np.int8), n_items)


@dataclass
class RetrievalStage:
    """Reads the user's history (item indexes), writes the merged candidates.

    With a ``cache`` (:mod:`recsys.retrieval.cache`), a history seen before gets the candidates
    kept for it, and no source runs (``source_timings`` is then empty)."""

    retriever: Retriever
    n_items: int
    cache: CandidateCache | None = None
    name: str = "retrieval"
    reads: tuple[str, ...] = ("history",)
    writes: tuple[str, ...] = ("candidates", "source_timings")

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        if self.cache is not None:
            return self.run_batch([state])[0]
        batch, timings = self.retriever.retrieve(history_of(state["history"], self.n_items))
        return {"candidates": batch, "source_timings": timings}

    def run_batch(self, states: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Every source once for all the requests' histories (those the cache lacks); each gets
        its row of the merged candidates and its share of the sources' time."""
        cache = self.cache
        keys = [cache.key(s["history"]) for s in states] if cache is not None else []
        kept = [cache.get(k) for k in keys] if cache is not None else [None] * len(states)
        todo = [i for i, row in enumerate(kept) if row is None]
        out: list[dict[str, Any]] = [{"candidates": row, "source_timings": {}} for row in kept]
        if not todo:
            return out
        histories = histories_of([states[i]["history"] for i in todo], self.n_items)
        batch, timings = self.retriever.retrieve(histories)
        share = {name: ms / len(todo) for name, ms in timings.items()}
        for row, i in enumerate(todo):
            candidates = batch.rows(row, row + 1)
            if cache is not None:
                candidates = cache.put(keys[i], candidates)
            out[i] = {"candidates": candidates, "source_timings": dict(share)}
        return out


@dataclass
class HistoryStage:
    """Looks the user up; unknown users get an empty history, hence the cold-start answer."""

    user_index: Mapping[str, int]
    sequences: Sequences
    name: str = "history"
    reads: tuple[str, ...] = ("user_id",)
    writes: tuple[str, ...] = ("history", "cold_start")

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        row = self.user_index.get(state["user_id"])
        if row is None:
            return {"history": np.zeros(0, dtype=np.int32), "cold_start": True}
        history = self.sequences.user(row)
        return {"history": history, "cold_start": len(history) == 0}
