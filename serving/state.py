"""The app's hold on the served bundle, swapped atomically (hot reload builds on :meth:`swap`).

A :class:`Served` is everything derived from one bundle that requests need: the recommend and
rank pipelines, the item-id index, the source that answers /similar, and the session state (the
events recorded since the bundle's snapshot, as that bundle's item indexes). It is built once,
before the swap, so a request takes one snapshot (``state.require()``) and uses one bundle
throughout, even if a swap happens meanwhile.

Both pipelines read history through :class:`recsys.events.LiveHistoryStage`, so the next request
of a user sees an event as soon as :meth:`AppState.record` acknowledges it. The stage catches its
session up with the log before every read, so an event logged by another process (a uvicorn
worker) or during a swap (which replays the whole log into the new bundle's session) is never
missed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agents.layer import encoder_similarity
from agents.port import Similarity
from features.guarded import feature_reads
from recsys.artifacts import Bundle, BundleError
from recsys.catalog import Catalog
from recsys.decision import DecisionConfig, DecisionRequest
from recsys.events import Event, EventLog, SessionState
from recsys.pipeline import Pipeline
from recsys.pipelines import build_pipelines
from recsys.ranking.ranker import RankingStage
from recsys.retrieval.cache import CacheStats
from recsys.retrieval.retriever import RetrievalStage
from recsys.retrieval.sources import CandidateSource
from recsys.search.stage import QueryRetrievalStage
from serving.errors import NoBundleError, NoEventLogError
from serving.feed import FeatureFeed

if TYPE_CHECKING:
    from features.store import FeatureStoreConfig

SIMILAR_SOURCES = ("covisit", "als", "attributes", "popular")  # first available answers


@dataclass(frozen=True)
class Served:
    bundle: Bundle
    recommend: Pipeline  # user_id, request -> history -> retrieval [-> ranking] -> decision
    rank: Pipeline  # user_id, given, request -> history -> given [-> ranking] -> decision
    search: Pipeline  # user_id, query, request -> query retrieval -> decision
    item_index: dict[str, int]
    ranker: str | None  # the ranker in the pipelines; None = merged order
    similar_source: CandidateSource
    session: SessionState  # events since the bundle's snapshot, read by both pipelines
    feed: FeatureFeed | None = None  # pushes acknowledged events to the Feast online store
    loaded_at: float = field(default_factory=time.time)
    # Models, ONNX sessions and the online-feature cache are not made for concurrent calls:
    # requests of one bundle take turns through them.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def caches(self) -> dict[str, CacheStats]:
        """The recommend pipeline's caches' figures by name (candidates, ranked); empty where
        it keeps none."""
        out: dict[str, CacheStats] = {}
        for stage in self.recommend.stages:
            if isinstance(stage, RetrievalStage) and stage.cache is not None:
                out["candidates"] = stage.cache.stats()
            elif isinstance(stage, RankingStage) and stage.cache is not None:
                out["ranked"] = stage.cache.stats()
        return out

    @property
    def version(self) -> str:
        return self.bundle.version

    # agents.port.CatalogPort: what the LLM steps read of the served bundle
    @property
    def catalog(self) -> Catalog:
        return self.bundle.items

    def _query_stage(self) -> QueryRetrievalStage:
        stage = self.search.stages[0]
        assert isinstance(stage, QueryRetrievalStage)  # recsys.pipelines.search_pipeline
        return stage

    def in_vocabulary(self, word: str) -> bool:
        return word in self._query_stage().lexical.vocab

    def encoder(self) -> Similarity | None:
        text = self._query_stage().text
        return encoder_similarity(text.model) if text is not None else None

    @classmethod
    def build(
        cls,
        bundle: Bundle,
        ranker: str | None = None,
        events: EventLog | None = None,
        decision: DecisionConfig | None = None,
        push_features: bool = False,
        features: FeatureStoreConfig | None = None,
        candidate_cache: int = 0,
    ) -> Served:
        """Everything one bundle serves; the session is ``events`` replayed (empty without).

        Raises (and so refuses the bundle) for an unknown ranker, and when the decision rules
        name a brand or category its catalog lacks.
        """
        by_name = {s.name: s for s in bundle.retriever.sources}
        similar = next((by_name[n] for n in SIMILAR_SOURCES if n in by_name), None)
        session = (
            SessionState.for_bundle(bundle)
            if events is None
            else SessionState.replay(events, bundle)
        )
        pipelines = build_pipelines(bundle, ranker, session, events, decision, candidate_cache)
        feed = None
        if push_features and bundle.ranking is not None and events is not None:
            feed = feature_feed(bundle, events, features).start()
        return cls(
            bundle=bundle,
            recommend=pipelines.recommend,
            rank=pipelines.rank,
            search=pipelines.search,
            item_index=session.item_index,
            ranker=pipelines.ranker,
            similar_source=similar or bundle.retriever.sources[0],
            session=session,
            feed=feed,
        )


def feature_feed(
    bundle: Bundle, events: EventLog, features: FeatureStoreConfig | None = None
) -> FeatureFeed:
    """A feed pushing the logged events into the bundle's Feast repository (its own store)."""
    from features.push import EventPusher, snapshot_history
    from features.store import FeatureRepo
    from recsys.ranking.bundle import FEATURE_REPO

    assert bundle.ranking is not None
    # the stored user rows were built from these sequences of the snapshot
    history = snapshot_history(bundle.user_ids, bundle.item_ids, bundle.fitted_on())
    pusher = EventPusher(FeatureRepo(bundle.path / FEATURE_REPO, features), history)
    online = bundle.ranking.features
    return FeatureFeed(pusher, events, on_pushed=getattr(online, "forget", lambda users: None))


TRIAL_COLD_USER = "\x00trial-cold-user"  # no shopper id can be this: always cold


class TrialError(BundleError):
    """The new bundle failed a trial request: it is refused, the old one serves on."""


def trial(served: Served) -> None:
    """Answer a known user, a cold user and a search with ``served`` through its real online
    store (strict: a read failure raises instead of degrading), before anyone is served by it.

    Checksums cannot cover the online store (it takes pushed events); this is how a store
    missing a table, or one that cannot be reached, refuses the bundle.
    """
    bundle = served.bundle
    users = [str(bundle.user_ids[0])] if len(bundle.user_ids) else []
    runs: list[tuple[str, Pipeline, dict[str, object]]] = [
        (f"recommend for {u!r}", served.recommend, {"user_id": u}) for u in users
    ]
    runs.append(("recommend for a cold user", served.recommend, {"user_id": TRIAL_COLD_USER}))
    query = _trial_query(bundle)
    search: dict[str, object] = {"user_id": "", "query": query, "expansions": ()}
    runs.append((f"search {query!r}", served.search, search))
    for what, pipeline, inputs in runs:
        try:
            with feature_reads(strict=True):
                pipeline.run({**inputs, "request": DecisionRequest(k=10, explore=False)})
        except Exception as exc:
            raise TrialError(
                f"bundle {bundle.version} failed its trial ({what}): {type(exc).__name__}: {exc}"
            ) from exc


def _trial_query(bundle: Bundle) -> str:
    titles = bundle.items.title
    words = str(titles[0]).split() if titles is not None and len(titles) else []
    return words[0] if words else "gift"


class AppState:
    """Holds the served bundle (or why there is none); ``swap`` replaces it atomically."""

    def __init__(
        self,
        on_swap: Callable[[Served], None] | None = None,
        events: EventLog | None = None,
        decision: DecisionConfig | None = None,
        push_features: bool = False,
        features: FeatureStoreConfig | None = None,
        candidate_cache: int = 0,
    ) -> None:
        self._served: Served | None = None
        self.candidate_cache = candidate_cache  # histories whose candidates recommend keeps
        self.push_features = push_features
        self.features = features  # every bundle's online store; None: RECSYS_FEATURES_* env
        self.decision = decision or DecisionConfig()
        self._error: str | None = None
        self._swap_lock = threading.Lock()
        self._on_swap = on_swap
        self.events = events

    @property
    def current(self) -> Served | None:
        return self._served

    @property
    def error(self) -> str | None:
        """Why no bundle is served (the last load failure), if one is not."""
        return self._error

    def require(self) -> Served:
        served = self._served
        if served is None:
            reason = f": {self._error}" if self._error else ""
            raise NoBundleError(f"no bundle is loaded{reason}")
        return served

    def swap(self, new_bundle: Bundle, ranker: str | None = None) -> Served | None:
        """Serve ``new_bundle`` from the next request on; returns what was served before.

        Everything is built before the switch, so a bundle that fails to build is never served
        and the previous one stays.
        """
        served = Served.build(
            new_bundle, ranker, self.events, self.decision, self.push_features, self.features,
            self.candidate_cache,
        )  # fmt: skip
        try:
            trial(served)
        except Exception:
            if served.feed is not None:
                served.feed.close()
            raise
        with self._swap_lock:
            old, self._served, self._error = self._served, served, None
            if self._on_swap is not None:
                self._on_swap(served)
        if old is not None and old.feed is not None:
            old.feed.close()
        return old

    def close(self) -> None:
        served = self._served
        if served is not None and served.feed is not None:
            served.feed.close()

    def failed(self, message: str) -> None:
        """Record a load failure (kept while nothing is served, shown by /readyz)."""
        self._error = message

    def record(self, event: Event) -> bool:
        """Log ``event`` and apply it to the served session; False for a duplicate.

        Acknowledged (returns) only once the log committed it. An unknown item is rejected
        before anything is written; no bundle served (nothing to check items against) is 503.
        """
        if self.events is None:
            raise NoEventLogError("this server has no event log configured")
        served = self.require()
        served.session.item(event.item_id)  # UnknownEventItemError before any write
        fresh = self.events.append(event)
        served.session.sync(self.events)  # this event, and any another worker logged
        if fresh and served.feed is not None:
            served.feed.notify()
        return fresh
