"""Every served pipeline is assembled in recsys.pipelines, and checked when built."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.artifacts import Bundle, TrainConfig, load_bundle, train_bundle
from recsys.data.synth import generate
from recsys.decision import DecisionRequest, load_decision_config
from recsys.pipelines import build_pipelines, ranker_name, recommend_pipeline
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.retriever import RetrievalConfig


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    ds = generate(users=300, items=120, seed=4)
    config = TrainConfig(
        sources=("popular", "covisit", "attributes"),
        retrieval=RetrievalConfig(total=60, depth=60),
        ranking=RankerTrainConfig(rankers=("lightgbm",)),
    )
    return load_bundle(train_bundle(ds, tmp_path_factory.mktemp("pipes") / "b", config))


def _names(pipeline: object) -> list[str]:
    return [s.name for s in pipeline.stages]  # type: ignore[attr-defined]


def test_the_served_pipelines_and_their_stages(bundle: Bundle) -> None:
    pipes = build_pipelines(bundle)
    assert pipes.ranker == "lightgbm"
    assert _names(pipes.recommend) == ["history", "retrieval", "ranking", "decision"]
    assert _names(pipes.rank) == ["history", "candidates", "ranking", "decision"]
    assert _names(pipes.search) == ["query_retrieval", "decision"]
    user = str(bundle.user_ids[0])
    out = pipes.recommend.run({"user_id": user, "request": DecisionRequest(k=5)})
    assert len(out.state["decision"].ids) == 5
    given = np.array([3, 1, 2], np.int64)
    ranked = pipes.rank.run({"user_id": user, "given": given, "request": DecisionRequest(k=3)})
    assert sorted(ranked.state["decision"].ids.tolist()) == [1, 2, 3]


def test_without_a_ranker_the_merged_order_is_decided(bundle: Bundle) -> None:
    plain = recommend_pipeline(bundle, None)
    assert _names(plain) == ["history", "retrieval"]
    with pytest.raises(ValueError, match=r"unknown ranker 'xgb'.*lightgbm"):
        ranker_name(bundle, "xgb")


def test_rules_naming_what_the_catalog_lacks_are_refused_when_built(
    bundle: Bundle, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("category_caps:\n  No Such Category: 1\n")
    with pytest.raises(ValueError, match="No Such Category"):
        build_pipelines(bundle, decision=load_decision_config(rules))
