"""Query retrieval: a search query's candidates from BM25 and, where the bundle has it, the text
encoder's FAISS index, fused like any other candidate lists (quotas + weighted RRF)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.artifacts import Bundle
from recsys.pipeline import Pipeline
from recsys.retrieval.merge import SourceLists, merge
from recsys.retrieval.sources import CandidateSource
from recsys.search.lexical import LexicalIndex


class SearchUnavailableError(RuntimeError):
    """The served bundle has neither catalog text nor a text source to search with."""


# the dense encoder understands paraphrases, BM25 exact words (brands, sizes): both matter
QUOTAS = {"lexical": 0.5, "text": 0.5}


@dataclass
class QueryRetrievalStage:
    lexical: LexicalIndex
    text: CandidateSource | None  # the bundle's text source (model + FAISS index), if any
    depth: int = 200
    name: str = "query_retrieval"
    reads: tuple[str, ...] = ("query",)
    writes: tuple[str, ...] = ("candidates", "source_timings", "query_terms")

    @property
    def sources(self) -> tuple[str, ...]:
        names = []
        if self.lexical.usable:
            names.append("lexical")
        if self.text is not None:
            names.append("text")
        return tuple(names)

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        query = str(state["query"])
        lists: dict[str, SourceLists] = {}
        timings: dict[str, float] = {}
        if self.lexical.usable:
            started = time.perf_counter()
            ids, scores = self.lexical.top(query, self.depth)
            lists["lexical"] = SourceLists(ids[None, :], scores[None, :])
            timings["lexical"] = (time.perf_counter() - started) * 1000.0
        if self.text is not None:
            started = time.perf_counter()
            vector = self.text.model.encode_queries([query])  # type: ignore[attr-defined] # (1, D)
            ids, scores = self.text.index.search(vector, self.depth)
            lists["text"] = SourceLists(np.asarray(ids, np.int64), np.asarray(scores, np.float32))
            timings["text"] = (time.perf_counter() - started) * 1000.0
        if not lists:
            raise RuntimeError(
                "search needs catalog text or a text source; this bundle has neither"
            )
        batch = merge(lists, {n: QUOTAS[n] for n in lists}, self.depth, order=list(lists))
        return {
            "candidates": batch,
            "source_timings": timings,
            "query_terms": len(self.lexical.query_terms(query)) if self.lexical.usable else 0,
        }


def query_stage(bundle: Bundle, depth: int = 200) -> QueryRetrievalStage:
    """BM25 over the bundle's catalog (popularity-tie-broken) plus its text source if any."""
    seq = bundle.sequences
    popularity = np.bincount(seq.items, minlength=len(bundle.item_ids))
    lexical = LexicalIndex().build(bundle.items, popularity)
    text = next((s for s in bundle.retriever.sources if s.name == "text" and s.is_vector), None)
    return QueryRetrievalStage(lexical, text, depth)


def search_pipeline(query: QueryRetrievalStage, decision: Any) -> Pipeline:
    """query -> candidates -> decision; ``decision`` is a DecisionStage with ranked=False."""
    return Pipeline([query, decision], inputs=["user_id", "query", "request"])
