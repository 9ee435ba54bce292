"""Query retrieval: a search query's candidates from BM25 and, where the bundle has it, the text
encoder's FAISS index, fused like any other candidate lists (quotas + weighted RRF)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from recsys.retrieval.merge import SourceLists, merge
from recsys.retrieval.sources import CandidateSource
from recsys.search.lexical import LexicalIndex

if TYPE_CHECKING:
    from recsys.artifacts import Bundle


class SearchUnavailableError(RuntimeError):
    """The served bundle has neither catalog text nor a text source to search with."""


# the dense encoder understands paraphrases, BM25 exact words (brands, sizes): both matter
QUOTAS = {"lexical": 0.5, "text": 0.5}
# all rewrites of a query together weigh this much against the original's own lists
REWRITE_SHARE = 0.5


@dataclass
class QueryRetrievalStage:
    lexical: LexicalIndex
    text: CandidateSource | None  # the bundle's text source (model + FAISS index), if any
    depth: int = 200
    name: str = "query_retrieval"
    reads: tuple[str, ...] = ("query", "expansions")
    writes: tuple[str, ...] = ("candidates", "source_timings", "query_terms")

    @property
    def sources(self) -> tuple[str, ...]:
        names = []
        if self.lexical.usable:
            names.append("lexical")
        if self.text is not None:
            names.append("text")
        return tuple(names)

    def lists(self, query: str, prefix: str = "") -> dict[str, SourceLists]:
        """Each source's list for one query, named ``prefix + source``."""
        lists: dict[str, SourceLists] = {}
        if self.lexical.usable:
            ids, scores = self.lexical.top(query, self.depth)
            lists[prefix + "lexical"] = SourceLists(ids[None, :], scores[None, :])
        if self.text is not None:
            vector = self.text.model.encode_queries([query])  # type: ignore[attr-defined] # (1, D)
            ids, scores = self.text.index.search(vector, self.depth)
            lists[prefix + "text"] = SourceLists(
                np.asarray(ids, np.int64), np.asarray(scores, np.float32)
            )
        return lists

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        query = str(state["query"])
        expansions: tuple[str, ...] = tuple(state["expansions"])
        if not self.sources:
            raise SearchUnavailableError(
                "search needs catalog titles or a text source; this bundle has neither "
                "(retrain it: bundles now keep their catalog)"
            )
        started = time.perf_counter()
        lists = self.lists(query)
        timings = {"query": (time.perf_counter() - started) * 1000.0}
        quotas = {name: QUOTAS[name] for name in lists}
        for n, extra in enumerate(expansions, start=1):  # rewrites: fused, the original leads
            started = time.perf_counter()
            for name, found in self.lists(extra, prefix=f"rewrite{n}_").items():
                lists[name] = found
                quotas[name] = REWRITE_SHARE * QUOTAS[name.split("_", 1)[1]] / len(expansions)
            timings[f"rewrite{n}"] = (time.perf_counter() - started) * 1000.0
        batch = merge(lists, quotas, self.depth, order=list(lists))
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
