"""Caller-supplied candidates: rank given items as if retrieval had proposed them.

The given items become a one-row :class:`CandidateBatch` shaped like the retrieval stage's, so
the ranker gets the features it was trained with: each source's list for the shopper's history
is computed as in retrieval (read ``depth`` deep), and a given item keeps the rank and score it
has in each source's *own* list (not a rank among the given items); an item a source did not
list in its top ``depth`` is not-found for it (rank 0, score NaN). The fused score and the order
of the batch are the retrieval merge's (weighted RRF); items no source found come last, in the
given order.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.data.sequences import Sequences
from recsys.retrieval.merge import CandidateBatch, SourceLists, merge
from recsys.retrieval.retriever import Retriever, history_of


def given_candidates(
    retriever: Retriever, lists: Mapping[str, SourceLists], given: np.ndarray, history: Sequences
) -> CandidateBatch:
    """A (1, len(given)) batch of the distinct item indexes ``given``, merge-ordered, with the
    co-visitation links from ``history`` that the rankers read."""
    cfg = retriever.config
    heads = {}
    for name, lst in lists.items():
        ids = lst.ids[:, : cfg.depth].copy()
        ids[~np.isin(ids, given)] = -1  # positions are kept, so ranks stay the source's own
        heads[name] = SourceLists(ids, lst.scores[:, : cfg.depth])
    weights = dict(cfg.fusion_weights) or None
    names = retriever.names
    found = merge(heads, cfg.quota_map(names), len(given), names, weights)
    n_found = int((found.ids[0] >= 0).sum())
    rest = given[~np.isin(given, found.ids[0, :n_found])]
    ids = found.ids.copy()
    ids[0, n_found : n_found + len(rest)] = rest
    batch = CandidateBatch(found.sources, ids, found.fused, found.source_scores, found.source_ranks)
    return retriever.with_links(batch, history)


@dataclass
class GivenCandidatesStage:
    """Reads the history and the given item indexes, writes them as the candidates."""

    retriever: Retriever
    n_items: int
    name: str = "candidates"
    reads: tuple[str, ...] = ("history", "given")
    writes: tuple[str, ...] = ("candidates", "source_timings")

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        history = history_of(state["history"], self.n_items)
        lists, timings = self.retriever.source_lists(history)
        started = time.perf_counter()
        given = np.asarray(state["given"], np.int64)
        batch = given_candidates(self.retriever, lists, given, history)
        timings["merge"] = (time.perf_counter() - started) * 1000.0
        return {"candidates": batch, "source_timings": timings}
