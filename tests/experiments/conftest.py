"""One small real bundle (popular, covisit, als; a LightGBM ranker) for the experiment tests."""

from __future__ import annotations

import pytest

from recsys.artifacts import Bundle, TrainConfig, load_bundle, train_bundle
from recsys.data.contract import Dataset
from recsys.data.synth import generate
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.retriever import RetrievalConfig

CANDIDATES = 100


@pytest.fixture(scope="session")
def shop() -> Dataset:
    return generate(users=600, items=200, seed=3)


@pytest.fixture(scope="session")
def bundle(shop: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    config = TrainConfig(
        sources=("popular", "covisit", "als"),
        retrieval=RetrievalConfig(total=CANDIDATES, depth=CANDIDATES),
        ranking=RankerTrainConfig(rankers=("lightgbm",)),
    )
    return load_bundle(train_bundle(shop, tmp_path_factory.mktemp("exp") / "bundle", config))
