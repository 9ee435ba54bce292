"""Evaluating a seeded sample of users: what it reports, and that it estimates the full figure."""

from __future__ import annotations

import pytest

from models.base import TrainingData
from models.covisit import CovisitModel
from recsys.data.sequences import encode
from recsys.data.split import LeaveOneOut, leave_one_out
from recsys.data.synth import generate
from recsys.evaluation.protocol import evaluate_fitted


@pytest.fixture(scope="module")
def fitted() -> tuple[CovisitModel, LeaveOneOut]:
    ds = generate(users=3000, items=400, seed=5)
    split = leave_one_out(encode(ds))
    return CovisitModel().fit(TrainingData(split.train, ds.items)), split


def test_a_sample_reports_its_size_and_estimates_the_full_figure(
    fitted: tuple[CovisitModel, LeaveOneOut],
) -> None:
    model, split = fitted
    full = evaluate_fitted(model, split, "valid")
    part = evaluate_fitted(model, split, "valid", max_users=1500, seed=1)
    assert "sampled_from" not in full
    assert part["users"] == 1500 and part["sampled_from"] == full["users"]
    assert part["ndcg@10"] == pytest.approx(full["ndcg@10"], rel=0.15)
    assert part == evaluate_fitted(model, split, "valid", max_users=1500, seed=1)  # seeded
    other = evaluate_fitted(model, split, "valid", max_users=1500, seed=2)
    assert other["ndcg@10"] != part["ndcg@10"]
    # a cap above the count evaluates everyone
    assert evaluate_fitted(model, split, "valid", max_users=10**6) == full


@pytest.mark.parametrize("bad", [0, -3])
def test_a_non_positive_cap_is_refused(fitted: tuple[CovisitModel, LeaveOneOut], bad: int) -> None:
    model, split = fitted
    with pytest.raises(ValueError, match=f"max_users must be a positive count or None, got {bad}"):
        evaluate_fitted(model, split, "valid", max_users=bad)
