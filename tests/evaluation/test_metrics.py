"""Hand-computed cases for the full-ranking metrics, ties and exclusions included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.evaluation.metrics import candidate_recall, metrics_from_ranks, target_ranks


def metrics_for(scores: list[list[float]], targets: list[int], ks=(1, 2, 3), ties="expected"):
    g, t = target_ranks(np.array(scores, dtype=np.float32), np.array(targets), ties)
    return {k: v.tolist() for k, v in metrics_from_ranks(g, t, ks).items()}


def test_single_target_rank_two() -> None:
    m = metrics_for([[0.9, 0.5, 0.7, 0.1]], [2])
    assert m["recall@1"] == [0.0]
    assert m["recall@2"] == [1.0]
    assert m["ndcg@2"][0] == pytest.approx(1 / math.log2(3))
    assert m["mrr@2"][0] == pytest.approx(0.5)
    assert m["ndcg@1"] == [0.0] and m["mrr@1"] == [0.0]


def test_ties_are_scored_in_expectation() -> None:
    # target 0 ties with items 1 and 2: ranks 1, 2, 3 each with probability 1/3
    m = metrics_for([[1.0, 1.0, 1.0, 0.0]], [0])
    assert m["recall@1"][0] == pytest.approx(1 / 3)
    assert m["recall@2"][0] == pytest.approx(2 / 3)
    assert m["recall@3"][0] == pytest.approx(1.0)
    assert m["ndcg@2"][0] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert m["ndcg@3"][0] == pytest.approx((1 + 1 / math.log2(3) + 0.5) / 3)
    assert m["mrr@3"][0] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)


def test_ties_after_better_items() -> None:
    # one item strictly better, target tied with one more: ranks 2 or 3
    m = metrics_for([[5.0, 2.0, 2.0, 1.0]], [2])
    assert m["recall@1"] == [0.0]
    assert m["recall@2"][0] == pytest.approx(0.5)
    assert m["ndcg@3"][0] == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / 2)
    assert m["mrr@3"][0] == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_index_tie_rule_puts_lower_index_first() -> None:
    m = metrics_for([[1.0, 1.0, 1.0, 0.0]], [1], ties="index")
    assert m["recall@1"] == [0.0] and m["recall@2"] == [1.0]
    assert m["mrr@3"][0] == pytest.approx(0.5)


def test_constant_scorer_gets_chance_level() -> None:
    n_items, k = 50, 10
    scores = np.zeros((n_items, n_items), dtype=np.float32)
    g, t = target_ranks(scores, np.arange(n_items))
    recall = metrics_from_ranks(g, t, (k,))[f"recall@{k}"]
    assert recall.mean() == pytest.approx(k / n_items)


def test_excluded_items_do_not_outrank_the_target() -> None:
    scores = np.array([[9.0, 8.0, 1.0, 0.0]], dtype=np.float32)
    scores[0, [0, 1]] = -np.inf  # the user's history
    m = metrics_for(scores.tolist(), [2])
    assert m["recall@1"] == [1.0] and m["ndcg@1"] == [1.0]


def test_batch_mean_over_users() -> None:
    m = metrics_for([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0]], [0, 2], ks=(1,))
    assert np.mean(m["recall@1"]) == pytest.approx(0.5)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="NaN"):
        target_ranks(np.array([[np.nan, 1.0]]), np.array([1]))
    with pytest.raises(ValueError, match="excluded"):
        target_ranks(np.array([[-np.inf, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="valid rules"):
        target_ranks(np.array([[0.0, 1.0]]), np.array([0]), ties="optimistic")
    with pytest.raises(ValueError, match="do not match"):
        target_ranks(np.array([[0.0, 1.0]]), np.array([0, 1]))


def test_candidate_recall_with_padding() -> None:
    cands = np.array([[3, 1, 2, -1], [5, 6, -1, -1], [0, 9, 9, 4]])
    hit = candidate_recall(cands, np.array([2, 7, 4]), (1, 3, 4))
    assert hit["candidate_recall@1"].tolist() == [0.0, 0.0, 0.0]
    assert hit["candidate_recall@3"].tolist() == [1.0, 0.0, 0.0]
    assert hit["candidate_recall@4"].tolist() == [1.0, 0.0, 1.0]
