"""Earlier time folds: the refitted sources never saw the item a fold labels."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.base import TrainingData
from models.covisit import CovisitModel
from models.popular import PopularModel
from recsys.data.contract import Dataset
from recsys.data.sequences import Sequences, encode
from recsys.data.split import leave_one_out
from recsys.ranking.folds import earlier, refit_sources, restrict
from recsys.ranking.train import RankerTrainConfig
from recsys.retrieval.sources import CandidateSource


def _shop() -> Dataset:
    """Every user walks x_u, a, b, y, z: the pair a -> b is only ever the last training step."""
    rows = []
    for u in range(40):
        for t, item in enumerate([f"x{u % 8}", "a", "b", "y", "z"]):
            rows.append((f"u{u}", item, t, "click"))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "ts", "event"])
    items = pd.DataFrame({"item_id": sorted(set(inter["item_id"]))})
    items["title"] = items["item_id"]
    return Dataset(inter, items, {"name": "walk"}).validate()


def test_earlier_drops_the_last_k_items_and_keeps_one() -> None:
    enc = encode(_shop())
    lengths = earlier(enc, 1).sequences.lengths
    assert (lengths == 4).all()
    assert (earlier(enc, 9).sequences.lengths == 1).all()  # never an empty user
    assert earlier(enc, 0).sequences.lengths.tolist() == enc.sequences.lengths.tolist()
    with pytest.raises(ValueError, match="k must be >= 0, got -1"):
        earlier(enc, -1)


def test_a_fold_labels_the_item_before_and_its_sources_never_saw_it() -> None:
    ds = _shop()
    enc = encode(ds)
    index = enc.item_index()
    a, b = index["a"], index["b"]
    split = leave_one_out(enc)
    seen = CovisitModel().fit(TrainingData(split.train, ds.items))
    fold = leave_one_out(earlier(enc, 1))
    assert (fold.valid.targets == b).all()  # fold 1 labels each user's b
    assert (fold.train.lengths == 2).all()  # ... from x_u, a
    refitted = refit_sources([CandidateSource("covisit", seen)], ds, fold.train)[0]
    assert refitted.model is not seen
    assert refitted.model.config == seen.config
    after_a = Sequences(np.array([0, 1]), np.array([a], np.int32), np.zeros(1, np.int64),
                        np.zeros(1, np.int8), enc.n_items)  # fmt: skip
    # the main fit counted a -> b (the main validation item's history ends with it) ...
    assert seen.matrix_ is not None and seen.matrix_[a, b] > 0
    # ... the fold's refit did not: its label is not known to the source that retrieves it
    assert refitted.model.matrix_ is not None and refitted.model.matrix_[a, b] == 0
    assert refitted.model.recommend(after_a, 3)[0].shape == (1, 3)


def test_a_catalog_only_source_is_shared_not_refitted() -> None:
    ds = _shop()
    enc = encode(ds)
    fold = leave_one_out(earlier(enc, 1))

    class CatalogOnly(PopularModel):  # a pure-logic stand-in for the text encoder
        catalog_only = True

    shared = CandidateSource("popular", CatalogOnly().fit(TrainingData(fold.train, ds.items)))
    assert refit_sources([shared], ds, fold.train)[0] is shared


def test_restrict_keeps_only_the_given_users() -> None:
    split = leave_one_out(encode(_shop()))
    part = restrict(split.valid, np.array([3, 5, 7]))
    assert part.users.tolist() == [3, 5, 7]
    assert len(part.history.indptr) == 4 and len(part.targets) == 3


def test_negative_folds_are_rejected() -> None:
    with pytest.raises(ValueError, match="folds must be >= 0"):
        RankerTrainConfig(folds=-1)


@pytest.mark.parametrize("refit", [True, False])
def test_served_sources_know_the_validation_items_only_when_refitted(
    refit: bool, tmp_path: Path
) -> None:
    from recsys.artifacts import TrainConfig, load_bundle, train_bundle
    from recsys.errors import BundleError
    from recsys.evaluation.retrieval import evaluate_bundle

    ds = _shop()
    config = TrainConfig(sources=("popular", "covisit"), ranking=None, refit_with_valid=refit)
    bundle = load_bundle(train_bundle(ds, tmp_path / "b", config))
    index = encode(ds).item_index()
    covisit = bundle.retriever.sources[1].model
    assert isinstance(covisit, CovisitModel) and covisit.matrix_ is not None
    # b -> y leads to every validation target; y -> z to every test target, never fitted
    assert (covisit.matrix_[index["b"], index["y"]] > 0) == refit
    assert covisit.matrix_[index["y"], index["z"]] == 0
    assert bundle.manifest["config"]["refit_with_valid"] is refit
    if refit:  # a validation figure would flatter sources fitted on the validation items
        with pytest.raises(BundleError, match="valid splits for it: \\['test'\\]"):
            evaluate_bundle(ds, bundle, "valid")
    else:
        assert evaluate_bundle(ds, bundle, "valid")["merged"]["ndcg@10"] >= 0.0


def test_attaching_rankers_with_refit_upgrades_a_training_split_bundle(tmp_path: Path) -> None:
    from recsys.artifacts import TrainConfig, attach_ranking, load_bundle, train_bundle

    ds = _shop()
    config = TrainConfig(sources=("popular", "covisit"), ranking=None, refit_with_valid=False)
    path = train_bundle(ds, tmp_path / "b", config)
    ranking = RankerTrainConfig(rankers=("lightgbm",), folds=1)
    bundle = load_bundle(attach_ranking(ds, path, ranking, refit=True))
    index = encode(ds).item_index()
    covisit = bundle.retriever.sources[1].model
    assert isinstance(covisit, CovisitModel) and covisit.matrix_ is not None
    assert covisit.matrix_[index["b"], index["y"]] > 0  # refitted with the validation items
    assert bundle.manifest["config"]["refit_with_valid"] is True
    assert len(bundle.manifest["ranking"]["rows"]["groups_per_fold"]) == 2
    assert bundle.ranking is not None


def test_sasrec_refits_for_the_epochs_its_early_stopping_chose() -> None:
    from models.sasrec import SASRecConfig, SASRecModel

    model = SASRecModel(SASRecConfig(epochs=50, patience=3))
    with pytest.raises(ValueError, match="not fitted"):
        model.refit_config()
    model.best_epoch_ = 7  # what fit records when epoch 7 validated best
    assert model.refit_config() == SASRecConfig(epochs=7, patience=3)
    assert CovisitModel().refit_config() == CovisitModel().config  # nothing to fix


def test_the_validation_view_of_a_refitted_bundle_never_saw_the_validation_items(
    tmp_path: Path,
) -> None:
    from recsys.artifacts import TrainConfig, load_bundle, train_bundle
    from recsys.ranking.folds import validation_view

    ds = _shop()
    index = encode(ds).item_index()
    config = TrainConfig(sources=("popular", "covisit"), ranking=None)
    refitted = load_bundle(train_bundle(ds, tmp_path / "refit", config))
    view = validation_view(ds, refitted)
    covisit = view.retriever.sources[1].model
    assert isinstance(covisit, CovisitModel) and covisit.matrix_ is not None
    assert covisit.matrix_[index["b"], index["y"]] == 0  # what tune-llm chooses its weight on
    plain_config = replace(config, refit_with_valid=False)
    plain = load_bundle(train_bundle(ds, tmp_path / "plain", plain_config))
    assert validation_view(ds, plain) is plain
