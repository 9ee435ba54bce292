"""Off-policy evaluation of ranked lists from logged propensities: IPS, SNIPS, doubly robust.

The unit is a request; its reward is the sum over slots (clicks, conversions or order value per
list). Estimators work slot by slot (a position-based model: the reward at a slot depends on its
item and slot), which is what the decision log's per-slot marginal propensities support: a
target policy that would show item ``a`` at slot ``s`` gets weight ``1 / p(a at s)`` on the
logged slots that showed ``a`` there, and 0 on the others.

- IPS: ``mean_i sum_s w_is r_is``.
- SNIPS: per slot, ``sum_i w_is r_is / sum_i w_is``, summed over slots (bias traded for much
  less variance when weights are large).
- DR: the direct method's prediction for the target's items plus the IPS correction of its
  error on the matched slots. Its reward model is the slot's mean reward times the item's
  shrunk lift over it, fit on the same log.

Intervals: normal, from each request's influence on the estimate (the delta method for the
ratio in SNIPS), or a percentile bootstrap over requests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

REWARDS = ("click", "conversion", "value")
ESTIMATORS = ("ips", "snips", "dr")
Interval = Literal["normal", "bootstrap"]


@dataclass(frozen=True)
class Estimate:
    estimator: str
    value: float
    low: float
    high: float
    requests: int
    matched: float  # share of slots where the target agrees with the log (weight > 0)
    max_weight: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _reward(outcomes: pd.DataFrame, reward: str) -> np.ndarray:
    if reward not in REWARDS:
        raise ValueError(f"unknown reward {reward!r}; valid: {list(REWARDS)}")
    return outcomes[reward].to_numpy(dtype=float)


@dataclass(frozen=True)
class RewardModel:
    """q(slot, item) = slot mean reward * item lift, the lift shrunk towards 1 by ``prior``
    slots' worth of evidence (an item seen a few times keeps a lift near 1)."""

    slot_mean: np.ndarray  # (slots,)
    lift: dict[str, float]

    @classmethod
    def fit(cls, outcomes: pd.DataFrame, reward: str, prior: float = 20.0) -> RewardModel:
        r = _reward(outcomes, reward)
        slot = outcomes["position"].to_numpy()
        slots = int(slot.max()) + 1 if len(slot) else 0
        totals = np.bincount(slot, weights=r, minlength=slots)
        counts = np.maximum(np.bincount(slot, minlength=slots), 1)
        slot_mean = totals / counts
        expected = slot_mean[slot]
        frame = pd.DataFrame({"item": outcomes["item_id"].to_numpy(), "r": r, "e": expected})
        sums = frame.groupby("item")[["r", "e"]].sum()
        mean_e = float(expected.mean()) if len(expected) else 0.0
        lift = (sums["r"] + prior * mean_e) / (sums["e"] + prior * mean_e + 1e-12)
        return cls(slot_mean, {str(k): float(v) for k, v in lift.items()})

    def predict(self, slots: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        base = self.slot_mean[np.minimum(slots, len(self.slot_mean) - 1)]
        if items is None:
            return base
        return base * np.array([self.lift.get(i, 1.0) for i in items])


def _per_request(request: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum ``values`` per request (``request`` are codes 0..n-1)."""
    return np.bincount(
        request, weights=values, minlength=int(request.max()) + 1 if len(request) else 0
    )


def _normal(value: float, influence: np.ndarray, level: float) -> tuple[float, float]:
    n = len(influence)
    if n < 2:
        return float("nan"), float("nan")
    half = float(stats.norm.ppf(0.5 + level / 2) * influence.std(ddof=1) / np.sqrt(n))
    return value - half, value + half


def evaluate_policy(
    outcomes: pd.DataFrame,
    target: pd.DataFrame | None = None,
    reward: str = "click",
    level: float = 0.95,
    interval: Interval = "normal",
    resamples: int = 500,
    seed: int = 0,
) -> dict[str, Estimate]:
    """IPS, SNIPS and DR estimates of a target policy's reward per request.

    ``outcomes`` is :func:`recsys.experiments.attribution.join_outcomes`'s frame. ``target``
    holds the target's list for each logged request (request_id, position, item_id); None means
    the logging policy's greedy list (what it shows without exploration: a logged slot matches
    it unless an exploration draw filled it). Requests the target has no list for are left out.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if interval not in ("normal", "bootstrap"):
        raise ValueError(f"unknown interval {interval!r}; valid: ['normal', 'bootstrap']")
    r = _reward(outcomes, reward)
    model = RewardModel.fit(outcomes, reward)
    slots = outcomes["position"].to_numpy()
    p = outcomes["propensity"].to_numpy(dtype=float)
    if np.any(p <= 0) or np.any(p > 1):
        bad = p[(p <= 0) | (p > 1)][:3].tolist()
        raise ValueError(f"propensities must be in (0, 1], got {bad}")
    if target is None:
        match = ~outcomes["explored"].to_numpy(dtype=bool)
        keep = np.ones(len(outcomes), dtype=bool)
        q_target = model.predict(slots, None)  # the greedy item of an explored slot is unlogged
        q_logged = q_target
    else:
        dup = target.duplicated(["request_id", "position"])
        if dup.any():
            first = target[dup].iloc[0]
            raise ValueError(
                f"the target lists several items at position {first['position']} of request "
                f"{first['request_id']!r}; one item per (request_id, position)"
            )
        want = target.set_index(["request_id", "position"])["item_id"].astype(str)
        key = pd.MultiIndex.from_arrays([outcomes["request_id"], outcomes["position"]])
        wanted = want.reindex(key).to_numpy()
        keep = pd.Series(outcomes["request_id"]).isin(set(target["request_id"])).to_numpy()
        keep &= ~pd.isna(wanted)
        match = wanted == outcomes["item_id"].to_numpy()
        q_target = model.predict(slots, np.where(pd.isna(wanted), "", wanted).astype(str))
        q_logged = model.predict(slots, outcomes["item_id"].to_numpy().astype(str))
    if not keep.any():
        raise ValueError("the target policy has a list for none of the logged requests")
    req = pd.factorize(outcomes["request_id"].to_numpy()[keep])[0]
    slot, w = slots[keep], np.where(match[keep], 1.0 / p[keep], 0.0)
    r, q_target, q_logged = r[keep], q_target[keep], q_logged[keep]
    n = int(req.max()) + 1

    def point(rows: np.ndarray | None) -> dict[str, float]:
        """The three estimates on the requests drawn (``rows``: request multiplicities)."""
        m = np.ones(n) if rows is None else rows
        mult = m[req]
        total = m.sum()
        ips = float((mult * w * r).sum() / total)
        num = np.bincount(slot, weights=mult * w * r)
        den = np.bincount(slot, weights=mult * w)
        snips = float(np.sum(np.divide(num, den, out=np.zeros_like(num), where=den > 0)))
        dr = float((mult * (q_target + w * (r - q_logged))).sum() / total)
        return {"ips": ips, "snips": snips, "dr": dr}

    values = point(None)
    if interval == "normal":
        num = np.bincount(slot, weights=w * r)
        den = np.bincount(slot, weights=w)
        ratio = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        scale = np.divide(n, den, out=np.zeros_like(den), where=den > 0)
        influence = {
            "ips": _per_request(req, w * r),
            "snips": _per_request(req, w * (r - ratio[slot]) * scale[slot]),
            "dr": _per_request(req, q_target + w * (r - q_logged)),
        }
        bounds = {k: _normal(values[k], influence[k], level) for k in ESTIMATORS}
    else:
        rng = np.random.default_rng(seed)
        draws = [
            point(rng.multinomial(n, np.full(n, 1.0 / n)).astype(float)) for _ in range(resamples)
        ]
        tail = (1 - level) / 2 * 100
        bounds = {
            k: tuple(np.percentile([d[k] for d in draws], [tail, 100 - tail]).tolist())
            for k in ESTIMATORS
        }
    matched = float(match[keep].mean())
    return {
        k: Estimate(
            k, values[k], float(bounds[k][0]), float(bounds[k][1]), n, matched, float(w.max())
        )
        for k in ESTIMATORS
    }


def logged_value(
    outcomes: pd.DataFrame, reward: str = "click", level: float = 0.95
) -> tuple[float, float, float]:
    """What the logging policy delivered per request (on-policy mean, normal interval)."""
    req = pd.factorize(outcomes["request_id"].to_numpy())[0]
    per = _per_request(req, _reward(outcomes, reward))
    value = float(per.mean())
    low, high = _normal(value, per, level)
    return value, low, high


def per_arm(
    outcomes: pd.DataFrame,
    reward: str = "click",
    level: float = 0.95,
    interval: Interval = "normal",
) -> list[dict[str, object]]:
    """Each arm's logged value and its greedy list's IPS, SNIPS and DR estimates."""
    rows: list[dict[str, object]] = []
    for arm, part in outcomes.groupby("arm", sort=True):
        value, low, high = logged_value(part, reward, level)
        estimates = evaluate_policy(part, None, reward, level, interval)
        versions = sorted(set(part["model_version"].dropna().astype(str)))
        rows.append(
            {
                "arm": str(arm),
                "model_version": ",".join(versions),
                "logged": {"value": value, "low": low, "high": high},
                "greedy": {k: e.as_dict() for k, e in estimates.items()},
            }
        )
    return rows
