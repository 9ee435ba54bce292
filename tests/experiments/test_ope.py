"""Off-policy evaluation against the synthetic shop's truth: the estimates' intervals hold the
true online value of a known better and a known worse policy, and tell them apart."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import Dataset
from recsys.decision.config import Exploration
from recsys.decision.policy import explore
from recsys.experiments.attribution import join_outcomes
from recsys.experiments.ope import evaluate_policy, per_arm
from recsys.experiments.simulate import Replay, ShopTruth, replay, true_value


@pytest.fixture(scope="module")
def truth(shop: Dataset) -> ShopTruth:
    return ShopTruth.of(shop)


@pytest.fixture(scope="module")
def logged(truth: ShopTruth) -> tuple[Replay, pd.DataFrame]:
    done = replay(truth, requests=10_000, epsilon=0.3, pool=10, seed=11)
    return done, join_outcomes(done.decisions, done.events)


def test_logged_propensities_are_marginals_at_every_slot() -> None:
    """Per-slot IPS divides by Pr(item at slot): the log must carry that, not the draw's
    probability given the earlier slots."""
    settings = Exploration(epsilon=0.4, pool=3)
    greedy, runs = np.arange(5), 6000
    rng = np.random.default_rng(0)
    counts, logged = np.zeros((5, 8)), np.zeros((5, 8))
    for _ in range(runs):
        out = explore(greedy, 8, settings, lambda: rng)
        counts[np.arange(5), out.positions] += 1
        logged[np.arange(5), out.positions] = out.propensity
    seen = counts > 0
    assert np.abs(counts[seen] / runs - logged[seen]).max() < 0.03
    # late slots: the 3-item pool is often used up, so the greedy pick is likelier than 1 - eps
    assert logged[4, 4] > 0.6 + 0.05


def test_truth_is_the_generators(truth: ShopTruth, shop: Dataset) -> None:
    assert shop.users is not None
    assert list(truth.user_ids) == shop.users["user_id"].tolist()
    bought = shop.interactions[shop.interactions["event"] == "purchase"]
    index = {u: n for n, u in enumerate(truth.user_ids)}
    items = {i: n for n, i in enumerate(truth.item_ids)}
    rel_bought = truth.relevance[
        bought["user_id"].map(index).to_numpy(), bought["item_id"].map(items).to_numpy()
    ]
    # shoppers buy what the truth says they like: well above a random pair's relevance
    assert rel_bought.mean() > truth.relevance.mean() + 1.0


@pytest.mark.parametrize("reward", ["click", "value"])
def test_estimates_bracket_the_true_value(
    truth: ShopTruth, logged: tuple[Replay, pd.DataFrame], reward: str
) -> None:
    done, outcomes = logged
    true = {p: true_value(truth, p, requests=20_000, reward=reward) for p in ("better", "worse")}
    assert true["better"] > true["worse"]
    for policy, value in true.items():
        estimates = evaluate_policy(outcomes, done.targets[policy], reward=reward)
        for name, e in estimates.items():
            assert e.low <= value <= e.high, (policy, name, e, value)
            # an interval that says something: narrower than the gap between the two policies
            assert e.high - e.low < true["better"] - true["worse"]
    if reward == "click":
        better = evaluate_policy(outcomes, done.targets["better"], reward=reward)["snips"]
        worse = evaluate_policy(outcomes, done.targets["worse"], reward=reward)["snips"]
        assert worse.high < better.low  # the log tells the two apart


def test_bootstrap_and_normal_intervals_agree(logged: tuple[Replay, pd.DataFrame]) -> None:
    done, outcomes = logged
    normal = evaluate_policy(outcomes, done.targets["better"])
    boot = evaluate_policy(outcomes, done.targets["better"], interval="bootstrap", resamples=200)
    for name in normal:
        assert boot[name].value == normal[name].value
        width_n = normal[name].high - normal[name].low
        width_b = boot[name].high - boot[name].low
        assert 0.7 < width_b / width_n < 1.4


def test_per_arm_reports_logged_and_greedy_values(logged: tuple[Replay, pd.DataFrame]) -> None:
    _, outcomes = logged
    (arm,) = per_arm(outcomes)
    assert arm["arm"] == "default" and arm["model_version"] == "sim"
    on_policy = outcomes.groupby("request_id")["click"].sum().mean()
    assert arm["logged"]["value"] == pytest.approx(on_policy)  # type: ignore[index]


def test_bad_inputs_name_the_valid_ones(logged: tuple[Replay, pd.DataFrame]) -> None:
    done, outcomes = logged
    with pytest.raises(ValueError, match=r"unknown reward 'ctr'; valid: \['click'"):
        evaluate_policy(outcomes, reward="ctr")
    with pytest.raises(ValueError, match="none of the logged requests"):
        target = done.targets["better"]
        evaluate_policy(outcomes, target.assign(request_id="elsewhere-" + target["request_id"]))
    with pytest.raises(ValueError, match="several items at position 0 of request 'x'"):
        evaluate_policy(outcomes, target.assign(request_id="x"))
