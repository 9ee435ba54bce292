"""The merge's fill and quota share chosen on validation users, with real sources."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recsys.artifacts import Bundle, TrainConfig, load_bundle, train_bundle
from recsys.data.contract import Dataset
from recsys.data.sequences import encode
from recsys.data.split import LeaveOneOut, leave_one_out
from recsys.data.synth import generate
from recsys.ranking.features import CONTEXT_FEATURES
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.merge import SourceLists
from recsys.retrieval.retriever import RetrievalConfig, Retriever, history_of
from recsys.retrieval.tune import FillTuneConfig, learn_fill, tune_fill

# a bad hand-set mix: popularity's head takes 18 of 20 slots, co-visitation (far better on the
# synthetic shop, whose users keep to their aisles) gets 2
BAD_MIX = RetrievalConfig(total=20, depth=40, quotas=(("popular", 0.9), ("covisit", 0.1)))


@pytest.fixture(scope="module")
def shop() -> Dataset:
    return generate(users=800, items=200, seed=0)


@pytest.fixture(scope="module")
def bundle(shop: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    config = TrainConfig(sources=("popular", "covisit"), retrieval=BAD_MIX, ranking=None)
    return load_bundle(train_bundle(shop, tmp_path_factory.mktemp("tune") / "b", config))


@pytest.fixture(scope="module")
def split(shop: Dataset) -> LeaveOneOut:
    return leave_one_out(encode(shop))


def _recall(retriever: Retriever, cfg: RetrievalConfig, split: LeaveOneOut) -> float:
    lists, _ = retriever.source_lists(split.valid.history)
    merged = Retriever(retriever.sources, cfg).merge(lists)
    return float((merged.ids == split.valid.targets[:, None]).any(axis=1).mean())


def test_a_bad_hand_set_mix_is_replaced_by_a_learned_fill(
    bundle: Bundle, split: LeaveOneOut
) -> None:
    retriever = bundle.retriever
    tuned, report = tune_fill(retriever, split.valid, FillTuneConfig(max_users=800))
    assert report["chosen"] != "as given"
    assert report["fill_weights"]["covisit"] == 1.0 > report["fill_weights"]["popular"]
    assert tuned.quota_share < 1.0 and dict(tuned.fill_weights) == report["fill_weights"]
    options = report["options"]
    assert options[report["chosen"]]["recall"] > options["as given"]["recall"]
    # on every validation user, not only the ones it chose on
    assert _recall(retriever, tuned, split) > _recall(retriever, BAD_MIX, split) + 0.05
    users = report["users"]
    assert users["learn"] + users["choose"] == len(split.valid) and users["learn"] > 300


def test_without_a_clear_gain_the_given_mix_stays(bundle: Bundle, split: LeaveOneOut) -> None:
    # no option can beat the given mix by 100 standard errors
    tuned, report = tune_fill(bundle.retriever, split.valid, FillTuneConfig(max_users=800, z=100))
    assert report["chosen"] == "as given" and tuned == bundle.retriever.config
    few = replace(split.valid, users=split.valid.users[:3], targets=split.valid.targets[:3],
                  history=split.valid.history.select(np.arange(3)))  # fmt: skip
    tuned, report = tune_fill(bundle.retriever, few)
    assert tuned == bundle.retriever.config and "too few" in report["reason"]


def test_learned_weights_follow_the_source_that_ranks_targets_high() -> None:
    rng = np.random.default_rng(0)
    n, depth = 300, 30
    targets = rng.integers(1000, 2000, n)
    # both list the same items (so being listed says nothing); "good" ranks the target within
    # its first five, "noise" anywhere
    pool = np.stack([rng.choice(999, depth, replace=False) for _ in range(n)])
    pool[:, 0] = targets
    good = np.stack([np.roll(row, rng.integers(0, 5)) for row in pool])
    noise = rng.permuted(pool, axis=1)
    lists = {name: SourceLists(ids, -np.arange(depth, dtype=np.float32)[None].repeat(n, 0))
             for name, ids in (("good", good), ("noise", noise))}  # fmt: skip
    weights = learn_fill(lists, targets, ["good", "noise"], FillTuneConfig(negative_share=0.2))
    assert weights["good"] == 1.0 and weights["noise"] < 0.2


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"quota_shares must be non-empty and in \[0, 1\]"):
        FillTuneConfig(quota_shares=(1.5,))
    with pytest.raises(ValueError, match="max_users must be >= 4"):
        FillTuneConfig(max_users=2)
    with pytest.raises(ValueError, match=r"quota_share must be in \[0, 1\], got 2"):
        RetrievalConfig(quota_share=2)
    with pytest.raises(ValueError, match="fill weights must be non-negative"):
        RetrievalConfig(fill_weights=(("als", -1.0),))


def test_a_bundle_serves_the_tuned_merge_with_the_links_its_ranker_reads(tmp_path: Path) -> None:
    shop = generate(users=600, items=150, seed=1)
    ranking = RankerTrainConfig(rankers=("lightgbm",), context=CONTEXT_FEATURES)
    config = TrainConfig(sources=("popular", "covisit", "als"), retrieval=BAD_MIX, ranking=ranking)
    bundle = load_bundle(train_bundle(shop, tmp_path / "b", config))
    section = bundle.manifest["ranking"]
    assert section["fill_tuning"]["chosen"] in section["fill_tuning"]["options"]
    served = bundle.retriever.config
    assert bundle.manifest["config"]["retrieval"] == section["retrieval"]
    assert served.quota_share == section["retrieval"]["quota_share"]
    assert dict(served.fill_weights) == dict(section["retrieval"]["fill_weights"])
    # the ranker reads all three links, so the served candidates carry them
    assert served.links == 3 and section["spec"]["context"] == list(CONTEXT_FEATURES)
    history = bundle.sequences.user(0)
    batch, _ = bundle.retriever.retrieve(history_of(history, len(bundle.item_ids)))
    assert batch.links is not None and batch.links.shape == (1, batch.ids.shape[1], 3)
    assert batch.links.any(), "some candidate is co-visited with a recent item"
    assert bundle.ranking is not None
    ranker = bundle.ranking.rankers["lightgbm"]
    ranked = ranker.rank(batch, history_of(history, len(bundle.item_ids)), ["u0"],
                         bundle.ranking.features)  # fmt: skip
    assert len(ranked.ids[0]) == batch.ids.shape[1]
