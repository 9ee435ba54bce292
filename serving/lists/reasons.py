"""Why an item is in a list (explain=true), in shopper terms, from what the pipeline already has.

Each source that found the item says why in words that name its evidence: co-visitation names
the history item that adds most to the item's score, the history-based similarity sources the
shopper's latest item, search the query, popularity itself. The filters the request applied
follow ("matches 'navy', priced up to 100"), then any decision note, and last the sources as a short
tag for debugging. Computed only when asked, for the shown items only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from models.covisit import CovisitModel
from recsys.catalog import Catalog
from recsys.decision import DecisionRequest, Filters
from recsys.decision.filters import price_phrase
from recsys.retrieval.merge import CandidateBatch

if TYPE_CHECKING:
    from serving.state import Served

# sources that score items by their likeness to the shopper's history (in recommend and rank)
LIKE_HISTORY = frozenset({"sasrec", "als", "text", "attributes"})
# sources that score items by the query (in search)
QUERY_SOURCES = frozenset({"lexical", "text"})
UNFOUND = "sources: none (ranked as given)"


def _covisit(served: Served) -> CovisitModel | None:
    for source in served.bundle.retriever.sources:
        if source.name == "covisit" and isinstance(source.model, CovisitModel):
            return source.model
    return None


@dataclass(frozen=True)
class Evidence:
    """What one list's reasons can name, looked up once per response."""

    catalog: Catalog
    history: np.ndarray  # (h,) item indexes, oldest first; empty in search and for new shoppers
    query: str | None  # the search query; None outside search
    filters: Filters
    links: Mapping[int, int]  # shown item -> the history item co-visitation links it to most

    @classmethod
    def of(cls, served: Served, state: Mapping[str, Any], items: Sequence[int]) -> Evidence:
        history = np.asarray(state.get("history", np.zeros(0, np.int64)), dtype=np.int64)
        request = state.get("request")
        filters = request.filters if isinstance(request, DecisionRequest) else Filters()
        links: dict[int, int] = {}
        batch: CandidateBatch = state["candidates"]
        model = _covisit(served) if "covisit" in batch.sources and len(history) else None
        if model is not None and len(items):
            found = model.strongest_links(history, np.asarray(items, dtype=np.int64))
            links = {int(i): int(h) for i, h in zip(items, found, strict=True) if h >= 0}
        query = state.get("query")
        return cls(served.catalog, history, str(query) if query else None, filters, links)

    def title(self, index: int) -> str:
        title = self.catalog.title[index] if self.catalog.title is not None else ""
        return str(title or self.catalog.item_ids[index])

    def because(self, source: str, item: int) -> str | None:
        """The shopper-facing reason ``source`` found ``item``; None for a source without one."""
        if source == "popular":
            return "popular now"
        if self.query is not None and source in QUERY_SOURCES:
            return f"matches your search '{self.query}'"
        if source == "covisit":
            linked = self.links.get(item)
            if linked is None:  # no recent item co-visits it: listed on the popularity tie-break
                return "popular now"
            return f"often viewed or bought with {self.title(linked)}"
        if source in LIKE_HISTORY and len(self.history):
            return f"like {self.title(int(self.history[-1]))} you viewed"
        return None

    def matches(self, item: int) -> str | None:
        """What of ``item`` the request's filters asked for: "matches 'navy', priced up to 100"."""
        said = []
        if self.filters.attributes and self.catalog.attributes is not None:
            table = self.catalog.attribute_table()
            for key, _ in self.filters.attributes:
                value = table.shown[table.key(key, f"filters.attributes.{key}")][item]
                said.append(f"'{value}'")
        if self.filters.brands and self.catalog.brand is not None:
            said.append(f"'{self.catalog.brand[item]}'")
        price = price_phrase(self.filters.price_min, self.filters.price_max)
        if price is not None:
            said.append(price)
        if not said:
            return None
        return ("matches " if said[0].startswith("'") else "") + ", ".join(said)


# the most specific evidence first: what the shopper did, then the query, popularity last
_ORDER = {"covisit": 0, **dict.fromkeys(LIKE_HISTORY, 1), "lexical": 2, "popular": 9}


def reasons(
    evidence: Evidence, batch: CandidateBatch, slot: int, item: int, decided: str
) -> list[str]:
    """One shown item's reasons: the sources' in shopper terms, the filters it met, the decision
    note (anything but plain "ranked"), and last the sources as a tag."""
    found = batch.found_by(0, slot)
    out: list[str] = []
    for source in sorted(found, key=lambda name: _ORDER.get(name, 5)):
        said = evidence.because(source, item)
        if said is not None and said not in out:
            out.append(said)
    matched = evidence.matches(item)
    if matched is not None:
        out.append(matched)
    if decided != "ranked":
        out.append(decided)
    out.append(f"sources: {', '.join(found)}" if found else UNFOUND)
    return out
