"""The engine as the agents see it: a typed port owned by ``agents``, implemented by the server.

Agents never import ``serving``: they are handed an :class:`EnginePort` (``serving.engine_port``
implements it on the same service functions the HTTP routes use, so an agent's searches count
in the metrics, go to the decision log and take the same fallbacks as any caller's). A notebook
or a test can implement it over anything that answers the same questions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from recsys.catalog import Catalog
from recsys.decision import Filters

# (query, texts) -> (len(texts),) cosine similarities from the bundle's sentence encoder
Similarity = Callable[[str, list[str]], np.ndarray]


@runtime_checkable
class CatalogPort(Protocol):
    """The served catalog and its search vocabulary: what rewriting and reranking read."""

    @property
    def version(self) -> str:
        """The served model version: caches built over the catalog are keyed by it."""
        ...

    @property
    def catalog(self) -> Catalog:
        """The served catalog (titles, brands, categories, prices, attributes)."""
        ...

    def in_vocabulary(self, word: str) -> bool:
        """Whether the search index knows ``word`` (lower case)."""
        ...

    def encoder(self) -> Similarity | None:
        """The bundle's sentence encoder as a similarity, or None when it has none."""
        ...



@runtime_checkable
class EnginePort(CatalogPort, Protocol):
    """The catalog, plus searches and recommendations through the serving pipelines."""

    def search(self, query: str, filters: Filters, k: int, user_id: str | None) -> list[int]:
        """Item indexes answering ``query`` under ``filters``, best first (at most ``k``)."""
        ...

    def recommend(self, user_id: str | None, k: int, filters: Filters) -> list[int]:
        """Item indexes recommended for ``user_id`` (cold start when None), best first."""
        ...
