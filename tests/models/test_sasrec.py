"""SASRec: inference as an inner product, causality, seeding, early stopping, and learning."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.base import TrainingData
from models.registry import make_model
from models.sasrec import (
    SASRecConfig,
    SASRecModel,
    bucketed_batches,
    hold_out_last,
    seen_before,
    training_windows,
)
from models.sasrec_net import FullSoftmaxLoss, SASRecNet, right_aligned
from recsys.data.contract import Dataset
from recsys.data.sequences import Sequences, encode
from recsys.data.split import leave_one_out
from recsys.evaluation.protocol import evaluate_fitted

# Small and quick: the aisles data needs ~15 epochs at this learning rate to be learned.
FAST = SASRecConfig(hidden=32, heads=2, ffn_mult=1, max_len=12, lr=3e-3, patience=3, threads=1)


def seqs_of(rows: list[list[int]], n_items: int) -> Sequences:
    lengths = [len(r) for r in rows]
    items = np.array([i for r in rows for i in r], dtype=np.int32)
    return Sequences(
        np.r_[0, np.cumsum(lengths)].astype(np.int64),
        items,
        np.arange(len(items), dtype=np.int64),
        np.zeros(len(items), np.int8),
        n_items,
    )


@pytest.fixture(scope="module")
def split(aisles: Dataset):
    return leave_one_out(encode(aisles))


@pytest.fixture(scope="module")
def trained(split) -> SASRecModel:
    return SASRecModel(FAST).fit(TrainingData(split.train), valid=split.valid)


def test_score_is_the_inner_product_of_query_and_item_vectors(trained, split) -> None:
    hist = split.test.history.select(np.arange(40))
    queries, items = trained.query_vectors(hist), trained.item_vectors()
    assert queries.shape == (40, FAST.hidden) and queries.dtype == np.float32
    assert items.shape == (split.data.n_items, FAST.hidden) and items.dtype == np.float32
    scores = trained.score(hist)
    assert scores.shape == (40, split.data.n_items) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, queries @ items.T, rtol=1e-5, atol=1e-5)


def test_inference_chunks_and_truncation_do_not_change_answers(trained, split) -> None:
    hist = split.test.history.select(np.arange(50))
    small_chunks = SASRecModel(dataclasses.replace(FAST, infer_batch=7))
    small_chunks.net_, small_chunks.n_items_ = trained.net_, trained.n_items_
    np.testing.assert_allclose(small_chunks.score(hist), trained.score(hist), atol=1e-5)
    # Only the latest max_len items count: older ones cannot move the query.
    long = seqs_of([list(range(60))], split.data.n_items)
    tail = seqs_of([list(range(60 - FAST.max_len, 60))], split.data.n_items)
    np.testing.assert_allclose(trained.query_vectors(long), trained.query_vectors(tail), atol=1e-5)
    empty = seqs_of([[]], split.data.n_items)
    assert np.isfinite(trained.score(empty)).all()


def test_hidden_states_are_causal() -> None:
    torch.manual_seed(0)
    net = SASRecNet(30, 16, 2, 2, max_len=10, dropout=0.3, ffn_dim=32, pre_ln=True).eval()
    items = torch.randint(0, 30, (4, 10))
    items[0, :3] = net.pad  # a left-padded row
    changed = items.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 30
    with torch.no_grad():
        before, after = net(items), net(changed)  # (B, L, D)
    torch.testing.assert_close(before[:, :6], after[:, :6])
    assert not torch.allclose(before[:, 6:], after[:, 6:])


def test_batch_width_does_not_change_outputs() -> None:
    # Positions count from the right edge, so cutting a batch to its longest row is exact.
    torch.manual_seed(0)
    net = SASRecNet(30, 16, 1, 2, max_len=10, dropout=0.0, ffn_dim=16, pre_ln=False).eval()
    narrow = torch.randint(0, 30, (3, 4))
    wide = torch.cat([torch.full((3, 6), net.pad), narrow], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(net(narrow), net(wide)[:, 6:], atol=1e-5, rtol=1e-5)


def test_full_softmax_loss_matches_cross_entropy() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(37, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 8, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 50, (37,))
    loss = FullSoftmaxLoss()(hidden, weight, targets)
    loss.backward()
    grads = hidden.grad, weight.grad
    hidden.grad = weight.grad = None
    expected = F.cross_entropy(hidden @ weight.T, targets)
    expected.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(grads, (hidden.grad, weight.grad))


def test_training_windows_predict_every_transition_once() -> None:
    seqs = seqs_of([[0, 1], [2], list(range(3, 15)), []], n_items=20)
    starts, ends, firsts = training_windows(seqs, max_len=5, all_windows=True)
    assert ((ends - starts >= 2) & (ends - starts <= 6)).all()
    np.testing.assert_array_equal(firsts, seqs.indptr[[0, 2, 2, 2]])
    targets = np.concatenate([seqs.items[s + 1 : e] for s, e in zip(starts, ends, strict=True)])
    expected = np.r_[1, np.arange(4, 15)]
    np.testing.assert_array_equal(np.sort(targets), expected)
    latest_only = training_windows(seqs, max_len=5, all_windows=False)
    assert len(latest_only[0]) == 2 and latest_only[1][-1] == len(seqs.items)

    width = int((ends - starts).max())
    padded = right_aligned(seqs.items, starts, ends, width, pad=20)
    assert (padded[:, -1] == seqs.items[ends - 1]).all()
    assert ((padded == 20).sum(axis=1) == width - (ends - starts)).all()


def test_seen_items_follow_the_order_of_the_targets() -> None:
    # User 0 = items 0..9 at positions 0..9; windows [6, 10) and [2, 7) of that user.
    firsts, starts, ends = np.array([0, 0]), np.array([6, 2]), np.array([10, 7])
    rows, positions = seen_before(firsts, starts, ends)
    targets = np.r_[7:10, 3:7]  # hidden[keep] order: window by window, oldest target first
    for row, target in enumerate(targets):
        np.testing.assert_array_equal(positions[rows == row], np.arange(target))


def test_excluded_logits_leave_the_softmax() -> None:
    torch.manual_seed(0)
    hidden = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 1, 2])
    rows, items = torch.tensor([0, 0, 2]), torch.tensor([3, 4, 5])
    loss = FullSoftmaxLoss()(hidden, weight, targets, (rows, items))
    logits = hidden @ weight.T
    expected = F.cross_entropy(
        logits.index_put((rows, items), torch.tensor(-torch.inf, dtype=torch.float64)), targets
    )
    torch.testing.assert_close(loss, expected)
    (grad,) = torch.autograd.grad(loss, weight)
    (expected_grad,) = torch.autograd.grad(expected, weight)
    torch.testing.assert_close(grad, expected_grad)


def test_bucketed_batches_cover_every_row_once() -> None:
    lengths = np.random.default_rng(1).integers(1, 50, size=1000)
    batches = bucketed_batches(lengths, 32, np.random.default_rng(0), pool_batches=4)
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(1000))
    assert max(len(b) for b in batches) == 32
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.5 * np.ptp(lengths), "rows in a batch have similar lengths"


def test_internal_holdout_takes_a_sample_of_last_items() -> None:
    seqs = seqs_of([[0, 1, 2], [3, 4], [5, 6, 7, 8]] * 10, n_items=9)
    train, valid = hold_out_last(seqs, 0.5, np.random.default_rng(0))
    assert len(valid) == 10 and set(np.diff(seqs.indptr)[valid.users]) <= {3, 4}
    np.testing.assert_array_equal(valid.targets, seqs.items[seqs.indptr[valid.users + 1] - 1])
    assert train.lengths.sum() == seqs.lengths.sum() - 10
    np.testing.assert_array_equal(valid.history.lengths, train.lengths[valid.users])


def test_same_seed_same_model_other_seed_other_model(split) -> None:
    cfg = dataclasses.replace(FAST, epochs=2)
    hist = split.test.history.select(np.arange(10))
    rng_state = torch.get_rng_state()
    first = SASRecModel(cfg).fit(TrainingData(split.train)).score(hist)
    assert torch.equal(torch.get_rng_state(), rng_state), "the caller's RNG is left alone"
    again = SASRecModel(cfg).fit(TrainingData(split.train)).score(hist)
    other = SASRecModel(dataclasses.replace(cfg, seed=1)).fit(TrainingData(split.train))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other.score(hist))


def test_early_stopping_keeps_the_best_epoch(trained, split) -> None:
    ndcgs = [row["valid_ndcg@10"] for row in trained.history_]
    best = int(np.argmax(ndcgs)) + 1  # first epoch reaching the maximum
    assert trained.best_epoch_ == best
    assert len(ndcgs) == best + FAST.patience < FAST.epochs, "stopped after `patience` epochs"
    assert trained.validation_ndcg(split.valid) == pytest.approx(ndcgs[best - 1], abs=1e-6)
    assert trained.summary()["best_epoch"] == best


def test_learns_the_aisles_and_beats_popularity(trained, split) -> None:
    popular = make_model("popular").fit(TrainingData(split.train))
    pop_ndcg = evaluate_fitted(popular, split, "test")["ndcg@10"]
    ndcg = evaluate_fitted(trained, split, "test")["ndcg@10"]
    assert ndcg > 0.5 and ndcg > 3 * pop_ndcg, (ndcg, pop_ndcg)


def test_unfitted_model_says_so() -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        SASRecModel().item_vectors()
