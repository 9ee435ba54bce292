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

from recsys.artifacts import Bundle
from recsys.events import Event, EventLog, LiveHistoryStage, SessionState, with_history
from recsys.pipeline import Pipeline
from recsys.retrieval.sources import CandidateSource
from serving.errors import NoBundleError, NoEventLogError

SIMILAR_SOURCES = ("covisit", "als", "attributes", "popular")  # first available answers


@dataclass(frozen=True)
class Served:
    bundle: Bundle
    recommend: Pipeline  # user_id -> history -> retrieval [-> ranking]
    rank: Pipeline  # user_id, given -> history -> given candidates [-> ranking]
    item_index: dict[str, int]
    ranker: str | None  # the ranker in the pipelines; None = merged order
    similar_source: CandidateSource
    session: SessionState  # events since the bundle's snapshot, read by both pipelines
    loaded_at: float = field(default_factory=time.time)
    # Models, ONNX sessions and the online-feature cache are not made for concurrent calls:
    # requests of one bundle take turns through them.
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def version(self) -> str:
        return self.bundle.version

    @classmethod
    def build(
        cls, bundle: Bundle, ranker: str | None = None, events: EventLog | None = None
    ) -> Served:
        """Everything one bundle serves; the session is ``events`` replayed (empty without)."""
        from serving.rank.service import rank_pipeline

        name = None
        if bundle.ranking is not None:
            name = ranker or bundle.ranking.default
        by_name = {s.name: s for s in bundle.retriever.sources}
        similar = next((by_name[n] for n in SIMILAR_SOURCES if n in by_name), None)
        session = (
            SessionState.for_bundle(bundle)
            if events is None
            else SessionState.replay(events, bundle)
        )
        live = LiveHistoryStage(bundle.user_index(), bundle.sequences, session, events)
        return cls(
            bundle=bundle,
            # bundle.pipeline raises ValueError for an unknown ranker
            recommend=with_history(bundle.pipeline(name), live),
            rank=with_history(rank_pipeline(bundle, name), live),
            item_index=session.item_index,
            ranker=name,
            similar_source=similar or bundle.retriever.sources[0],
            session=session,
        )


class AppState:
    """Holds the served bundle (or why there is none); ``swap`` replaces it atomically."""

    def __init__(
        self, on_swap: Callable[[Served], None] | None = None, events: EventLog | None = None
    ) -> None:
        self._served: Served | None = None
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
        served = Served.build(new_bundle, ranker, self.events)
        with self._swap_lock:
            old, self._served, self._error = self._served, served, None
            if self._on_swap is not None:
                self._on_swap(served)
        return old

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
        return fresh
