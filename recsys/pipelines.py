"""Every pipeline a bundle serves, assembled in one place.

| pipeline | inputs | stages |
|---|---|---|
| recommend | user_id[, request] | history -> retrieval [-> ranking] [-> decision] |
| rank | user_id, given[, request] | history -> given candidates [-> ranking] [-> decision] |
| search | user_id, query, expansions, request | query retrieval -> decision |

The history stage is the bundle's snapshot (:class:`HistoryStage`, evaluation and notebooks) or
the live one that also reads the events recorded since (:class:`LiveHistoryStage`, serving). The
decision stage is added when a :class:`Decider` is given. Serving, the CLI, notebooks and
benchmarks all build through here, so what is evaluated is what is served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recsys import native
from recsys.decision import DecisionConfig, DecisionStage
from recsys.decision.stage import PurchaseLookup
from recsys.pipeline import Pipeline
from recsys.ranking.ranker import RankedCache, RankingStage
from recsys.retrieval.cache import CandidateCache
from recsys.retrieval.given import GivenCandidatesStage
from recsys.retrieval.retriever import HistoryStage, RetrievalStage
from recsys.search.stage import query_stage

if TYPE_CHECKING:
    from recsys.artifacts import Bundle
    from recsys.events import EventLog, SessionState


def ranker_name(bundle: Bundle, ranker: str | None) -> str | None:
    """The ranker to serve: ``ranker``, else the one of the bundle's chosen order (None where
    the merged fusion was chosen, or the bundle has no rankers).

    Raises ValueError naming the bad ranker and the bundle's rankers.
    """
    if bundle.ranking is None:
        if ranker is not None:
            raise ValueError(f"ranker {ranker!r} asked for, but this bundle has no rankers")
        return None
    name = ranker or bundle.ranking.serve
    if name is None:
        return None
    if name not in bundle.ranking.rankers:
        raise ValueError(
            f"unknown ranker {name!r}; this bundle has {sorted(bundle.ranking.rankers)}"
        )
    return name


def _ranking(bundle: Bundle, ranker: str | None, cache: RankedCache | None = None) -> list[Any]:
    if ranker is None or bundle.ranking is None:
        return []
    model = bundle.ranking.rankers[ranker]
    # the chosen blend goes with the chosen ranker; any other ranker ranks alone
    blend = bundle.ranking.blend if ranker == bundle.ranking.serve else 0.0
    return [RankingStage(model, bundle.ranking.features, len(bundle.item_ids), blend, cache)]


@dataclass(frozen=True)
class Decider:
    """What a decision stage needs: the rules and who bought what (snapshot + session)."""

    config: DecisionConfig
    purchases: PurchaseLookup

    def stage(self, bundle: Bundle, ranked: bool) -> DecisionStage:
        return DecisionStage(bundle.items, self.config, self.purchases, ranked=ranked)


def recommend_pipeline(
    bundle: Bundle,
    ranker: str | None = None,
    history: Any = None,
    decider: Decider | None = None,
    candidate_cache: int = 0,
) -> Pipeline:
    """user_id[, request] -> history -> retrieval [-> ranking] [-> decision].

    ``ranker`` is used as given (None = no ranking stage): resolve it with :func:`ranker_name`.
    ``candidate_cache`` > 0 keeps that many histories' merged candidates
    (:mod:`recsys.retrieval.cache`), and as many rankings of them
    (:class:`recsys.ranking.ranker.RankedCache`).
    """
    candidates = CandidateCache(candidate_cache) if candidate_cache else None
    ranked = RankedCache(candidate_cache) if candidate_cache else None
    stages: list[Any] = [
        history or HistoryStage(bundle.user_index(), bundle.sequences),
        RetrievalStage(bundle.retriever, len(bundle.item_ids), candidates),
        *_ranking(bundle, ranker, ranked),
    ]
    return _decided(bundle, stages, ["user_id"], ranker, decider)


def rank_pipeline(
    bundle: Bundle,
    ranker: str | None = None,
    history: Any = None,
    decider: Decider | None = None,
) -> Pipeline:
    """user_id, given[, request] -> history -> given candidates [-> ranking] [-> decision]."""
    stages: list[Any] = [
        history or HistoryStage(bundle.user_index(), bundle.sequences),
        GivenCandidatesStage(bundle.retriever, len(bundle.item_ids)),
        *_ranking(bundle, ranker),
    ]
    return _decided(bundle, stages, ["user_id", "given"], ranker, decider)


def search_pipeline(bundle: Bundle, decider: Decider, depth: int = 200) -> Pipeline:
    """user_id, query, expansions, request -> query retrieval -> decision (unranked)."""
    stages: list[Any] = [query_stage(bundle, depth), decider.stage(bundle, ranked=False)]
    return Pipeline(stages, inputs=["user_id", "query", "expansions", "request"])


def _decided(
    bundle: Bundle,
    stages: list[Any],
    inputs: list[str],
    ranker: str | None,
    decider: Decider | None,
) -> Pipeline:
    if decider is None:
        return Pipeline(stages, inputs=inputs)
    decision = decider.stage(bundle, ranked=ranker is not None)
    return Pipeline([*stages, decision], inputs=[*inputs, "request"])


@dataclass(frozen=True)
class Pipelines:
    """The served pipelines of one bundle (all with live history and the decision stage)."""

    recommend: Pipeline
    rank: Pipeline
    search: Pipeline
    ranker: str | None  # the ranker in recommend and rank; None = the merged order


def build_pipelines(
    bundle: Bundle,
    ranker: str | None = None,
    session: SessionState | None = None,
    events: EventLog | None = None,
    decision: DecisionConfig | None = None,
    candidate_cache: int = 0,
) -> Pipelines:
    """recommend, rank and search over ``bundle``, reading history live from ``session``.

    ``candidate_cache`` > 0: recommend keeps that many histories' merged candidates, and as many
    rankings (:func:`recommend_pipeline`).

    ``session`` defaults to an empty one (no events since the snapshot); ``events`` is synced
    before every read. Raises ValueError for an unknown ranker, and when the decision rules name
    a brand or category the catalog lacks.
    """
    from recsys.events import LiveHistoryStage, SessionState

    name = ranker_name(bundle, ranker)
    native.prepare()  # compiled (or found in the cache) now, not on the first request
    session = session if session is not None else SessionState.for_bundle(bundle)
    users = bundle.user_index()
    live = LiveHistoryStage(users, bundle.sequences, session, events)
    purchases = PurchaseLookup(users, bundle.sequences, session)
    decider = Decider(decision or DecisionConfig(), purchases)
    return Pipelines(
        recommend=recommend_pipeline(bundle, name, live, decider, candidate_cache),
        rank=rank_pipeline(bundle, name, live, decider),
        search=search_pipeline(bundle, decider),
        ranker=name,
    )
