"""The agents' :class:`agents.port.EnginePort` over the served bundle.

Searches and recommendations go through the same service functions as ``POST /v1/search`` and
``POST /v1/recommend`` (their synchronous, non-LLM path), under the caller's endpoint name, so
they are counted in the metrics, logged in the decision log and take the same fallbacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.port import Similarity
from recsys.catalog import Catalog
from recsys.decision import Filters
from serving.lists.protocol import FilterSpec
from serving.lists.service import ListDeps
from serving.recommend.protocol import RecommendRequest
from serving.recommend.service import recommend_now
from serving.search.protocol import SearchRequest
from serving.search.service import search_now
from serving.state import Served

ANONYMOUS = ""  # never a catalog user: the cold-start answer


@dataclass(frozen=True)
class ServedEngine:
    """One served bundle as an engine port; ``endpoint`` names the caller in the metrics."""

    served: Served
    deps: ListDeps
    endpoint: str = "agent"

    @property
    def version(self) -> str:
        return self.served.version

    @property
    def catalog(self) -> Catalog:
        return self.served.catalog

    def in_vocabulary(self, word: str) -> bool:
        return self.served.in_vocabulary(word)

    def encoder(self) -> Similarity | None:
        return self.served.encoder()

    def search(self, query: str, filters: Filters, k: int, user_id: str | None) -> list[int]:
        spec = FilterSpec.from_filters(filters)
        request = SearchRequest(query=query, user_id=user_id, k=k, filters=spec, explore=False)
        answer = search_now(self.served, request, self.deps, f"{self.endpoint}_search")
        index = self.served.item_index
        return [index[item.item_id] for item in answer.items]

    def recommend(self, user_id: str | None, k: int, filters: Filters) -> list[int]:
        # an anonymous shopper is "" (never a catalog user), which the HTTP model refuses
        spec = FilterSpec.from_filters(filters)
        request = RecommendRequest.model_construct(
            user_id=user_id or ANONYMOUS, k=k, filters=spec, explore=False
        )
        answer = recommend_now(self.served, request, self.deps, f"{self.endpoint}_recommend")
        index = self.served.item_index
        return [index[item.item_id] for item in answer.items]
