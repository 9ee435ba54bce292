"""The served order is chosen on held-out validation users against the merged fusion: a ranker
that learned nothing loses to the fusion, one that learned something is chosen."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest

from features.tables import build_feature_tables
from models.lgbm_ranker import LGBMRanker, LGBMRankerConfig
from recsys.artifacts import TrainConfig, load_bundle, train_bundle
from recsys.data.sequences import EncodedDataset, encode
from recsys.data.split import EvalSet, leave_one_out
from recsys.data.synth import generate
from recsys.ranking.choose import MERGED, OrderChoice, Scorer, choose_order, validation_ndcg
from recsys.ranking.features import FrameSpec, TableFeatures
from recsys.ranking.frame import RankingFrame
from recsys.ranking.ranker import blend_scores, reorder
from recsys.ranking.train import RankerTrainConfig, split_users, training_frame
from recsys.retrieval.merge import CandidateBatch
from recsys.retrieval.retriever import RetrievalConfig, Retriever


def _batch(ids: np.ndarray) -> CandidateBatch:
    b, n = ids.shape
    fused = np.where(ids >= 0, 1.0 / (60.0 + np.arange(1, n + 1)), 0.0).astype(np.float32)
    return CandidateBatch(("s",), ids, fused, np.zeros((b, n, 1), np.float32),
                          np.ones((b, n, 1), np.int32))  # fmt: skip


def test_blend_weight_moves_between_the_ranker_and_the_merged_order() -> None:
    batch = _batch(np.array([[5, 6, 7, 8, -1]]))
    scores = np.array([0.0, 1.0, 2.0, 3.0], np.float32)  # the ranker reverses the merged list
    assert list(reorder(batch, blend_scores(batch, scores, 0.0)).ids[0, :4]) == [8, 7, 6, 5]
    assert list(reorder(batch, blend_scores(batch, scores, 0.99)).ids[0, :4]) == [5, 6, 7, 8]
    half = reorder(batch, blend_scores(batch, scores, 0.5)).ids[0]
    assert sorted(half[:4]) == [5, 6, 7, 8] and half[4] == -1  # same items, padding last


def test_a_ranker_within_noise_of_the_fusion_is_not_trusted() -> None:
    rng = np.random.default_rng(0)
    merged = (rng.random(2000) < 0.2).astype(float)
    noisy = merged.copy()  # wins 3 users, loses 2: higher mean, well within noise
    noisy[np.flatnonzero(merged == 0)[:3]] = 1.0
    noisy[np.flatnonzero(merged == 1)[:2]] = 0.0
    assert noisy.mean() > merged.mean()
    choice, report = choose_order({(None, 0.0): merged, ("lgbm", 0.0): noisy})
    assert choice.ranker is None and choice.label == MERGED
    assert report["validation_users"] == 2000
    better = np.clip(merged + (rng.random(2000) < 0.1), 0, 1)  # strictly more hits
    choice, _ = choose_order({(None, 0.0): merged, ("lgbm", 0.0): better})
    assert choice.label == "lgbm" and choice.blend == 0.0


@dataclass(frozen=True)
class Setting:
    retriever: Retriever
    enc: EncodedDataset
    features: TableFeatures
    spec: FrameSpec
    held_out: EvalSet  # validation users no ranker trains on
    fit_set: EvalSet  # the other validation users
    frame: RankingFrame  # training rows from the other validation users


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> Setting:
    shop = generate(users=1500, items=300, seed=0)
    config = TrainConfig(sources=("popular", "covisit", "als"), ranking=None,
                         retrieval=RetrievalConfig(total=100, depth=100))  # fmt: skip
    bundle = load_bundle(train_bundle(shop, tmp_path_factory.mktemp("choose") / "b", config))
    enc = encode(shop)
    split = leave_one_out(enc)
    features = TableFeatures(build_feature_tables(shop, enc, split.train), enc)
    spec = FrameSpec.fit(bundle.retriever.names, enc.n_items, features.item_matrix)
    fit_set, held_out = split_users(split.valid, 0.3, seed=0)
    frame = training_frame(bundle.retriever, fit_set, enc, features, spec,
                           RankerTrainConfig(rankers=("lightgbm",)))  # fmt: skip
    return Setting(bundle.retriever, enc, features, spec, held_out, fit_set, frame)


def _noise(frame: RankingFrame, seed: int) -> RankingFrame:
    """The frame with every feature replaced by noise: nothing to learn from."""
    rng = np.random.default_rng(seed)
    return replace(frame, dense=rng.random(frame.dense.shape).astype(np.float32),
                   sparse=np.zeros_like(frame.sparse))  # fmt: skip


def _choose(s: Setting, scorer: Scorer) -> tuple[OrderChoice, dict[str, Any]]:
    users = [str(u) for u in s.enc.user_ids[s.held_out.users]]
    per_user = validation_ndcg(
        s.retriever, s.held_out, users, s.features, s.spec, {"lightgbm": scorer}
    )
    return choose_order(per_user)


def test_a_ranker_of_random_features_loses_to_the_fusion(setting: Setting) -> None:
    model = LGBMRanker(LGBMRankerConfig(n_estimators=100)).fit(_noise(setting.frame, 1))
    choice, report = _choose(setting, lambda f: model.predict(_noise(f, 2)))
    figures = report["validation_ndcg@10"]
    assert figures["lightgbm"] < figures[MERGED]
    assert choice.label == MERGED and choice.ranker is None


def test_an_informative_ranker_is_chosen_over_the_fusion(setting: Setting) -> None:
    model = LGBMRanker(LGBMRankerConfig(n_estimators=100)).fit(setting.frame)
    choice, report = _choose(setting, model.predict)
    figures = report["validation_ndcg@10"]
    assert choice.ranker == "lightgbm", figures
    chosen = figures["lightgbm"] if choice.blend == 0.0 else figures["blend:lightgbm"]["ndcg@10"]
    assert chosen > figures[MERGED]


def test_a_row_budget_stops_adding_groups_once_reached(setting: Setting) -> None:
    config = RankerTrainConfig(rankers=("lightgbm",), max_rows=2_000, batch=16)
    frame = training_frame(setting.retriever, setting.fit_set, setting.enc, setting.features,
                           setting.spec, config)  # fmt: skip
    assert 2_000 <= frame.n_rows < setting.frame.n_rows
    assert frame.n_rows - frame.group[-16:].sum() < 2_000  # the last batch crossed the budget
    assert (frame.positives() > 0).all()  # every group kept still holds its positive
