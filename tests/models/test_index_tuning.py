"""IVF search effort chosen on recall: the fewest lists that reach the target on real queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.als import ALSConfig, ALSModel
from models.base import TrainingData
from models.index import IndexConfig, VectorIndex
from models.index_tuning import LADDER, tune_nprobe
from recsys.data.sequences import encode
from recsys.data.split import leave_one_out
from recsys.retrieval.sources import index_for
from tests.models.test_index import clustered

ONE = {"threads": 1}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return clustered(6000, 16, seed=0, clusters=60), clustered(200, 16, seed=1, clusters=60)


@pytest.mark.parametrize("target", [0.8, 0.95, 0.99])
def test_the_cheapest_step_that_reaches_the_target_is_chosen(data, target: float) -> None:
    vectors, queries = data
    cfg = IndexConfig(kind="ivf", ivf_nlist=64, target_recall=target, tune_k=50, **ONE)
    index = VectorIndex(cfg).build(vectors, queries)
    tuning = index.tuning_
    assert tuning is not None and index.config.ivf_nprobe == tuning["nprobe"]
    assert tuning["recall@50"] >= target
    assert index.recall_against_exact(queries, 50) == pytest.approx(tuning["recall@50"], abs=1e-3)
    steps = [p for p in LADDER if p < 64] + [64]
    tried = list(tuning["tried"].items())
    assert [p for p, _ in tried] == steps[: len(tried)]  # up the ladder from the cheapest
    assert all(recall < target for _, recall in tried[:-1])  # every cheaper step fell short


def test_a_harder_target_visits_more_lists_and_the_choice_is_saved(data, tmp_path: Path) -> None:
    vectors, queries = data
    easy = VectorIndex(IndexConfig(kind="ivf", ivf_nlist=64, target_recall=0.7, **ONE))
    hard = VectorIndex(IndexConfig(kind="ivf", ivf_nlist=64, target_recall=0.99, **ONE))
    assert (
        easy.build(vectors, queries).config.ivf_nprobe
        < hard.build(vectors, queries).config.ivf_nprobe
    )
    loaded = VectorIndex.load(hard.save(tmp_path / "ivf.faiss"))
    assert loaded.config.ivf_nprobe == hard.config.ivf_nprobe


def test_without_queries_or_for_an_exact_index_nothing_is_tuned(data) -> None:
    vectors, queries = data
    fixed = VectorIndex(IndexConfig(kind="ivf", ivf_nlist=64, ivf_nprobe=5, **ONE)).build(vectors)
    assert fixed.tuning_ is None and fixed.config.ivf_nprobe == 5
    exact = VectorIndex(IndexConfig(kind="exact", **ONE)).build(vectors, queries)
    assert exact.tuning_ is None and exact.kind_ == "exact"


def test_a_bad_target_is_refused_naming_it(data) -> None:
    with pytest.raises(ValueError, match="target_recall must be in"):
        IndexConfig(target_recall=1.5)
    vectors, queries = data
    index = VectorIndex(IndexConfig(kind="ivf", ivf_nlist=8, **ONE)).build(vectors)
    with pytest.raises(ValueError, match="got 0"):
        tune_nprobe(index._index, vectors, queries, 0.0, 10)


def test_index_for_tunes_an_approximate_index_on_the_training_users(aisles) -> None:
    split = leave_one_out(encode(aisles))
    model = ALSModel(ALSConfig(factors=16, iterations=10, threads=1)).fit(TrainingData(split.train))
    config = IndexConfig(exact_max_items=10, ivf_nlist=8, target_recall=0.9, **ONE)
    index = index_for(model, split.train, config)
    assert index.kind_ == "ivf" and index.tuning_ is not None
    assert index.tuning_["queries"] == min(1000, int((split.train.lengths > 0).sum()))
    users = split.test.history.select(np.arange(50))
    held_out = index.recall_against_exact(model.query_vectors(users), 100)
    assert held_out >= 0.85  # users it was not tuned on still get (nearly) the target
    assert index_for(model, None, config).tuning_ is None  # no users: the fixed nprobe
