"""The circuit breaker (recsys.breaker) and the online-store reads behind it (features.guarded).

The clock is a counter the test moves, so nothing here depends on the machine's speed. The
store failure is real: a table dropped from the bundle's SQLite online store.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from features.guarded import FEATURES_UNAVAILABLE, GuardedFeatures, feature_reads
from recsys.artifacts import TrainConfig, load_bundle, train_bundle
from recsys.breaker import BreakerOpenError, CircuitBreaker
from recsys.data.synth import generate
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.retriever import RetrievalConfig


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _boom() -> None:
    raise ConnectionError("store down")


def test_the_breaker_opens_refuses_then_lets_one_trial_through() -> None:
    clock = Clock()
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        "store",
        failures=2,
        reset_s=10,
        clock=clock,
        on_change=lambda n, a, b: changes.append((a, b)),
    )
    assert breaker.call(lambda: 1) == 1 and breaker.state == "closed"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(_boom)
    assert breaker.state == "open"
    with pytest.raises(BreakerOpenError, match="store down"):
        breaker.call(lambda: 1)  # refused without calling
    clock.now = 10
    assert breaker.state == "half_open"
    assert breaker.allow() and not breaker.allow()  # one trial at a time
    breaker.failure("still down")
    assert breaker.state == "open"  # a failed trial opens it again at once
    clock.now = 20
    assert breaker.call(lambda: 2) == 2 and breaker.state == "closed"
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "open"),
                       ("open", "half_open"), ("half_open", "closed")]  # fmt: skip


def test_a_success_resets_the_count_of_failures_in_a_row() -> None:
    breaker = CircuitBreaker("store", failures=2, clock=Clock())
    for _ in range(3):
        with pytest.raises(ConnectionError):
            breaker.call(_boom)
        breaker.call(lambda: None)
    assert breaker.state == "closed"


@pytest.fixture(scope="module")
def ranked_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = TrainConfig(
        sources=("popular", "covisit"),
        retrieval=RetrievalConfig(total=40, depth=40),
        ranking=RankerTrainConfig(rankers=("lightgbm",)),
    )
    ds = generate(users=200, items=60, seed=1)
    return train_bundle(ds, tmp_path_factory.mktemp("guarded") / "bundle", config)


def test_a_broken_store_gives_neutral_features_flagged_in_a_request_scope(
    ranked_bundle: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(ranked_bundle, tmp_path / "bundle"))
    bundle = load_bundle(root)
    assert bundle.ranking is not None
    features = bundle.ranking.features
    assert isinstance(features, GuardedFeatures)
    user = str(bundle.user_ids[0])
    with feature_reads() as degraded:
        assert not np.isnan(features.users([user])).all() and not degraded
    with sqlite3.connect(root / "feature_repo/data/online_store.db") as db:
        db.execute("DROP TABLE recsys_user_activity")
    features.forget([user])
    with feature_reads() as degraded:
        assert np.isnan(features.users([user, "new"])).all()
        assert degraded == {FEATURES_UNAVAILABLE}
    with pytest.raises(sqlite3.OperationalError), feature_reads(strict=True):
        features.users([user])  # a trial: the failure itself
    with pytest.raises(sqlite3.OperationalError):
        features.users([user])  # no request scope (training, a notebook): an error too
    for _ in range(features.breaker.failures):
        with feature_reads():
            features.users([user])
    assert features.breaker.state == "open"
