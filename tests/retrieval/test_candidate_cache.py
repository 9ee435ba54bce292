"""The candidate cache hands a repeated history what retrieval would compute again, bit for bit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import pytest

from recsys.artifacts import Bundle, TrainConfig, load_bundle, train_bundle
from recsys.data.synth import generate
from recsys.decision import DecisionRequest
from recsys.pipelines import build_pipelines
from recsys.ranking.features import FeatureSource
from recsys.ranking.ranker import RankedCache, RankingStage
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.cache import CandidateCache
from recsys.retrieval.merge import CandidateBatch
from recsys.retrieval.retriever import RetrievalConfig, RetrievalStage


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    ds = generate(users=300, items=120, seed=5)
    config = TrainConfig(
        sources=("popular", "covisit", "als", "attributes"),
        retrieval=RetrievalConfig(total=60, depth=60),
        ranking=RankerTrainConfig(rankers=("lightgbm",)),
    )
    return load_bundle(train_bundle(ds, tmp_path_factory.mktemp("cache") / "b", config))


def _same(a: CandidateBatch, b: CandidateBatch) -> None:
    assert a.sources == b.sources
    for f in fields(CandidateBatch):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "sources" or (x is None and y is None):
            continue
        assert x.dtype == y.dtype and x.shape == y.shape, f.name
        assert x.tobytes() == y.tobytes(), f.name  # NaN scores compare equal as bytes


def _histories(bundle: Bundle) -> list[np.ndarray]:
    seqs = bundle.sequences
    known = [seqs.user(u) for u in range(12)]
    return [*known, np.zeros(0, np.int32), known[3][:-1], known[0]]  # cold, changed, repeated


def test_hits_equal_retrieval_alone_and_in_batches(bundle: Bundle) -> None:
    n = len(bundle.item_ids)
    plain = RetrievalStage(bundle.retriever, n)
    cached = RetrievalStage(bundle.retriever, n, CandidateCache(64))
    histories = _histories(bundle)
    expected = [plain.run({"history": h})["candidates"] for h in histories]

    first = [cached.run({"history": h}) for h in histories]
    assert cached.cache is not None
    # the last history repeats the first: the one hit of this pass
    assert (cached.cache.hits, cached.cache.misses) == (1, len(histories) - 1)
    assert first[-1]["source_timings"] == {} and first[0]["source_timings"]
    for want, got in zip(expected, first, strict=True):
        _same(want, got["candidates"])

    again = [cached.run({"history": h})["candidates"] for h in histories]
    assert cached.cache.hits == 1 + len(histories)
    for want, got in zip(expected, again, strict=True):
        _same(want, got)

    # a batch of hits and misses (fresh histories, one twice) answers each as alone
    fresh = [bundle.sequences.user(u) for u in range(20, 26)]
    mixed = [histories[1], fresh[0], histories[12], fresh[1], fresh[0], *fresh[2:]]
    batch = cached.run_batch([{"history": h} for h in mixed])
    for h, got in zip(mixed, batch, strict=True):
        _same(plain.run({"history": h})["candidates"], got["candidates"])
    assert batch[0]["source_timings"] == {} and batch[1]["source_timings"]


def test_entries_are_compact_read_only_and_evicted_least_recent_first(bundle: Bundle) -> None:
    stage = RetrievalStage(bundle.retriever, len(bundle.item_ids), CandidateCache(3))
    histories = [bundle.sequences.user(u) for u in range(5)]
    out = stage.run_batch([{"history": h} for h in histories[:3]])
    row = out[1]["candidates"]
    assert row.ids.base is None and not row.ids.flags.writeable  # not a view of the batch
    with pytest.raises(ValueError, match="read-only"):
        row.fused[0, 0] = 1.0  # a stage writing into a kept row would change other answers
    cache = stage.cache
    assert cache is not None
    stage.run({"history": histories[0]})  # a hit: histories[0] is now the most recent
    stage.run({"history": histories[3]})  # a miss over size: evicts histories[1]
    assert cache.get(cache.key(histories[1])) is None
    assert cache.get(cache.key(histories[0])) is not None
    stats = cache.stats()
    assert (stats.entries, stats.size) == (3, 3)


def test_size_and_rows_are_checked(bundle: Bundle) -> None:
    with pytest.raises(ValueError, match="size >= 1, got 0"):
        CandidateCache(0)
    two = RetrievalStage(bundle.retriever, len(bundle.item_ids)).run_batch(
        [{"history": bundle.sequences.user(u)} for u in range(2)]
    )
    both = CandidateBatch.stack([r["candidates"] for r in two])
    with pytest.raises(ValueError, match="one request's candidates, got 2"):
        CandidateCache(4).put(b"k", both)


def test_a_served_pipeline_answers_the_same_from_its_cache(bundle: Bundle) -> None:
    plain = build_pipelines(bundle).recommend
    cached = build_pipelines(bundle, candidate_cache=16).recommend
    request = DecisionRequest(k=8, explore=False)
    for user in [str(u) for u in bundle.user_ids[:6]] * 2 + ["never-seen", "never-seen"]:
        want = plain.run({"user_id": user, "request": request}).state
        got = cached.run({"user_id": user, "request": request}).state
        assert got["ranked"].ids.tobytes() == want["ranked"].ids.tobytes()
        assert got["ranked"].scores.tobytes() == want["ranked"].scores.tobytes()
        assert got["decision"].ids.tolist() == want["decision"].ids.tolist()
    stage = next(s for s in cached.stages if isinstance(s, RetrievalStage))
    assert stage.cache is not None and stage.cache.hits == 7
    ranking = next(s for s in cached.stages if isinstance(s, RankingStage))
    assert ranking.cache is not None and ranking.cache.hits == 7


class _Shifted:
    """The bundle's features with every user row shifted and a settable version: what a pushed
    row or a new materialization looks like to the ranking stage."""

    def __init__(self, inner: FeatureSource) -> None:
        self.inner, self.shift, self.version = inner, 0.0, "v1"

    def items_at(self, idx: np.ndarray) -> np.ndarray:
        return self.inner.items_at(idx)

    def users(self, user_ids: Sequence[str]) -> np.ndarray:
        return self.inner.users(user_ids) + np.float32(self.shift)


def test_rankings_are_kept_by_user_features_and_version(bundle: Bundle) -> None:
    assert bundle.ranking is not None
    pipeline = build_pipelines(bundle).recommend
    plain = next(s for s in pipeline.stages if isinstance(s, RankingStage))
    features = _Shifted(plain.features)
    fresh = RankingStage(plain.ranker, features, plain.n_items, plain.blend)
    cached = RankingStage(plain.ranker, features, plain.n_items, plain.blend, RankedCache(32))
    retrieval = RetrievalStage(bundle.retriever, len(bundle.item_ids))
    states = []
    for u in range(6):
        history = bundle.sequences.user(u)
        state = {"user_id": str(bundle.user_ids[u]), "history": history}
        states.append({**state, **retrieval.run(state)})

    def check(got: list[dict[str, Any]]) -> None:
        for state, out in zip(states, got, strict=True):
            want = fresh.run(state)["ranked"]
            for name in ("ids", "scores", "order"):
                assert getattr(out["ranked"], name).tobytes() == getattr(want, name).tobytes()

    check([cached.run(s) for s in states])
    check(cached.run_batch(states))  # every one a hit
    assert cached.cache is not None and cached.cache.stats().hits == 6
    features.shift = 0.5  # pushed rows: every user's key changes
    check(cached.run_batch(states[:3]) + [cached.run(s) for s in states[3:]])
    assert cached.cache.stats().misses == 12
    features.version = "v2"  # a new materialization
    check([cached.run(s) for s in states])
    assert cached.cache.stats().misses == 18
    with pytest.raises(ValueError, match="read-only"):
        cached.run(states[0])["ranked"].scores[0, 0] = 0.0
