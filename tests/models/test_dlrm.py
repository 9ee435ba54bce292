"""DLRM on TorchRec: learns a known answer, ONNX twin parity, seeding, input checks."""

from __future__ import annotations

import dataclasses
import pickle
import sys

import numpy as np
import onnx
import pytest
import torch

from models.dlrm import DLRMConfig, DLRMRanker, build_dlrm
from models.dlrm_net import listwise_softmax_loss
from models.onnx_runtime import OnnxSession
from recsys.ranking.frame import RankingFrame, group_ndcg, select_groups

pytest.importorskip(
    "torchrec", reason="TorchRec is optional; `python -m recsys.bootstrap` installs it"
)
SEGMENTS, CATEGORIES, BRANDS, ROWS = 6, 12, 25, 20
FAST = DLRMConfig(epochs=12, patience=3, batch_size=32, threads=1)


def make_frame(seed: int, n_groups: int, nan_share: float = 0.1) -> RankingFrame:
    """Groups of 20 candidates; the positive is the best by a known utility.

    Utility = taste[user segment, category] + slope[category] * price: a sparse-sparse and a
    sparse-dense interaction. Brand and the two other dense columns are noise; a tenth of the
    prices are unknown (NaN, counted as the mean). The world (taste, slope) is fixed; ``seed``
    draws the rows, so frames with different seeds share one answer.
    """
    world = np.random.default_rng(1234)
    taste = world.normal(size=(SEGMENTS, CATEGORIES)) * 1.5
    slope = world.choice([-1.5, 1.5], size=CATEGORIES)
    rng = np.random.default_rng(seed)
    n = n_groups * ROWS
    segment = np.repeat(rng.integers(SEGMENTS, size=n_groups), ROWS)
    category = rng.integers(CATEGORIES, size=n)
    brand = rng.integers(BRANDS, size=n)
    dense = rng.normal(size=(n, 3)).astype(np.float32) * [3.0, 1.0, 10.0] + [20.0, 0.0, 5.0]
    price = (dense[:, 0] - 20.0) / 3.0
    dense[rng.random(n) < nan_share, 0] = np.nan
    utility = taste[segment, category] + slope[category] * np.nan_to_num(price * 1.0)
    utility = np.where(np.isnan(dense[:, 0]), taste[segment, category], utility)
    utility += rng.gumbel(size=n) * 0.3
    label = np.zeros(n, np.float32)
    label[np.arange(n_groups) * ROWS + utility.reshape(n_groups, ROWS).argmax(1)] = 1.0
    return RankingFrame(
        dense=dense.astype(np.float32),
        dense_names=("price", "noise_a", "noise_b"),
        sparse=np.stack([segment, category, brand], axis=1).astype(np.int64),
        sparse_names=("segment", "category", "brand"),
        cardinality=(SEGMENTS, CATEGORIES, BRANDS),
        group=np.full(n_groups, ROWS, dtype=np.int64),
        item=np.arange(n, dtype=np.int64),
        label=label,
    )


@pytest.fixture(scope="module")
def frames() -> tuple[RankingFrame, RankingFrame, RankingFrame]:
    return make_frame(0, 400), make_frame(1, 100), make_frame(2, 150)


@pytest.fixture(scope="module")
def trained(frames) -> DLRMRanker:
    train, valid, _ = frames
    return DLRMRanker(FAST).fit(train, valid)


def test_beats_constant_and_random_baselines(trained, frames) -> None:
    _, _, test = frames
    scores = trained.predict(test)
    assert scores.shape == (test.n_rows,) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    model = group_ndcg(scores, test, 10)
    constant = group_ndcg(np.zeros(test.n_rows, np.float32), test, 10)
    rand = group_ndcg(np.random.default_rng(0).random(test.n_rows), test, 10)
    assert model > max(constant, rand) + 0.25, (model, constant, rand)
    assert trained.best_epoch_ is not None and len(trained.history_) >= trained.best_epoch_


def test_onnx_scores_match_native_predict(trained, frames, tmp_path) -> None:
    _, _, test = frames
    assert np.isnan(test.dense).any()
    path = trained.export_onnx(tmp_path / "dlrm.onnx")
    onnx.checker.check_model(str(path))  # plain ONNX ops: nothing of TorchRec's left
    session = OnnxSession(path)
    assert session.input_names == ("dense", "sparse")
    onnx_scores = session.run(trained.onnx_feeds(test))
    assert onnx_scores.shape == (test.n_rows,) and onnx_scores.dtype == np.float32
    np.testing.assert_allclose(onnx_scores, trained.predict(test), rtol=0, atol=1e-4)
    # Dynamic batch axis: a single request's group scores the same as native too.
    one = select_groups(test, np.array([3]))
    np.testing.assert_allclose(
        session.run(trained.onnx_feeds(one)), trained.predict(one), atol=1e-4
    )


def test_codes_outside_the_fitted_tables_count_as_unknown(trained, frames, tmp_path) -> None:
    _, _, test = frames
    grown = dataclasses.replace(
        test, sparse=test.sparse.copy(), cardinality=(SEGMENTS, CATEGORIES, BRANDS + 10)
    )
    grown.sparse[:5, 2] = BRANDS + 3
    as_unknown = dataclasses.replace(test, sparse=test.sparse.copy())
    as_unknown.sparse[:5, 2] = 0
    np.testing.assert_array_equal(trained.predict(grown), trained.predict(as_unknown))
    session = OnnxSession(trained.export_onnx(tmp_path / "dlrm.onnx"))
    np.testing.assert_allclose(
        session.run(trained.onnx_feeds(grown)), trained.predict(grown), atol=1e-4
    )


def test_same_seed_same_scores_and_another_seed_differs(frames) -> None:
    train, valid, test = frames
    small = dataclasses.replace(FAST, epochs=2)
    first = DLRMRanker(small).fit(train, valid).predict(test)
    again = DLRMRanker(small).fit(train, valid).predict(test)
    other = DLRMRanker(dataclasses.replace(small, seed=1)).fit(train, valid).predict(test)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_pickled_ranker_scores_the_same(trained, frames) -> None:
    _, _, test = frames
    copy = pickle.loads(pickle.dumps(trained))
    np.testing.assert_array_equal(copy.predict(test), trained.predict(test))


def test_unpickles_and_serves_through_onnx_without_torchrec(
    trained, frames, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, test = frames
    blob = pickle.dumps(trained)
    session = OnnxSession(trained.export_onnx(tmp_path / "dlrm.onnx"))
    native = trained.predict(test)
    for module in [m for m in sys.modules if m == "torchrec" or m.startswith("torchrec.")]:
        monkeypatch.setitem(sys.modules, module, None)  # as a machine without TorchRec
    copy = pickle.loads(blob)
    np.testing.assert_allclose(session.run(copy.onnx_feeds(test)), native, atol=1e-4)
    with pytest.raises(ImportError, match=r"recsys\.bootstrap"):
        copy.predict(test)  # the native net is TorchRec's: scoring with it names the fix


def test_fit_without_valid_holds_out_groups(frames) -> None:
    train, _, _ = frames
    model = DLRMRanker(dataclasses.replace(FAST, epochs=2)).fit(train)
    assert all(np.isfinite(row["valid_ndcg@10"]) for row in model.history_)


def test_wrong_columns_are_refused(trained, frames) -> None:
    _, _, test = frames
    narrow = dataclasses.replace(test, dense=test.dense[:, :2], dense_names=("price", "noise_a"))
    with pytest.raises(ValueError, match=r"expected 3 .*got 2"):
        trained.predict(narrow)
    with pytest.raises(ValueError, match=r"expected 3 .*got 2"):
        trained.onnx_feeds(narrow)
    renamed = dataclasses.replace(test, dense_names=("price", "noise_b", "noise_a"))
    with pytest.raises(ValueError, match="noise_b"):
        trained.predict(renamed)
    with pytest.raises(RuntimeError, match="not fitted"):
        DLRMRanker().predict(test)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="embedding_dim"):
        DLRMConfig(embedding_dim=8, bottom=(64, 16))
    with pytest.raises(ValueError, match="end in 1"):
        DLRMConfig(top=(64, 2))


def test_build_dlrm_has_one_table_per_sparse_column() -> None:
    net = build_dlrm(DLRMConfig(), dense_dim=3, cardinality=(4, 7))
    tables = net.sparse_arch.embedding_bag_collection.embedding_bag_configs()
    assert [(t.name, t.num_embeddings, t.feature_names) for t in tables] == [
        ("t_f0", 4, ["f0"]),
        ("t_f1", 7, ["f1"]),
    ]


def test_listwise_loss_is_softmax_cross_entropy_per_group() -> None:
    logits = torch.tensor([1.0, 2.0, 0.5, -1.0, 3.0, 0.0, 0.2])
    labels = torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    groups = torch.tensor([0, 0, 0, 1, 1, 2, 2])  # group 2 has no positive: left out
    expected = (
        torch.nn.functional.cross_entropy(logits[:3][None], torch.tensor([1]))
        + torch.nn.functional.cross_entropy(logits[3:5][None], torch.tensor([0]))
    ) / 2
    torch.testing.assert_close(listwise_softmax_loss(logits, labels, groups, 3), expected)
