"""A replay simulator on the synthetic shop: clicks drawn from the generator's own truth.

:class:`ShopTruth` rebuilds the shop's hidden state (catalogue and shoppers) from a generated
dataset's seed and config, and scores every (shopper, item) pair with the generator's own
affinity plus the shopper's category taste at the end of the window. A shown item is clicked
with probability ``examine(slot) * sigmoid(click_bias + slope * relevance)`` (a position-based
model, so each slot's click depends only on its item and slot: what per-slot off-policy
estimators assume) and bought after a click with the generator's purchase funnel.

:func:`replay` runs a logging policy (a noisy view of the truth, as a trained ranker is, with
the decision layer's own epsilon-greedy :func:`recsys.decision.policy.explore`) and writes a
decision log and an event log in the served formats. Two known policies come with it,
``better`` and ``worse`` (the logging list with slots swapped for truly better or worse
explored items, so both stay within what the log can support), and :func:`true_value` gives
a policy's exact expected online value, the number OPE estimates must bracket.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.contract import Dataset
from recsys.data.synth.behaviour import Q_NONE, _Simulator
from recsys.data.synth.catalog import LEAF_TOP, Catalog, build_catalog
from recsys.data.synth.config import SynthConfig
from recsys.data.synth.users import Users, build_users
from recsys.decision.config import Exploration
from recsys.decision.policy import explore

POLICIES = ("logging", "better", "worse")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class ShopTruth:
    """The synthetic shop's hidden truth about every shopper and item."""

    catalog: Catalog
    users: Users
    config: SynthConfig
    relevance: np.ndarray  # (users, items) log-odds scale
    examine_power: float = 0.6  # attention at slot s: 1 / (1 + s) ** power

    @classmethod
    def of(cls, dataset: Dataset) -> ShopTruth:
        """Rebuild the truth of a dataset made by :func:`recsys.data.synth.generate`."""
        meta = dataset.meta
        if meta.get("source") != "recsys.data.synth":
            raise ValueError(
                f"dataset {meta.get('name')!r} was not made by the synthetic generator "
                f"(source {meta.get('source')!r}); only recsys.data.synth has a known truth"
            )
        cfg = SynthConfig(**meta["config"])
        # the same streams generate() draws its catalogue and shoppers from
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence(meta["seed"]).spawn(4)]
        catalog = build_catalog(int(meta["items"]), cfg, streams[0])
        users = build_users(int(meta["users"]), catalog, cfg, streams[1])
        return cls(catalog, users, cfg, _relevance(catalog, users, cfg))

    @property
    def user_ids(self) -> np.ndarray:
        return self.users.frame["user_id"].to_numpy()

    @property
    def item_ids(self) -> np.ndarray:
        return self.catalog.item_ids

    def examine(self, slots: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + slots) ** self.examine_power

    def click_prob(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(n, k) probability of a click on ``items[i, s]`` shown to ``users[i]`` at slot s."""
        cfg = self.config
        attract = _sigmoid(
            cfg.click_bias + cfg.funnel_slope * self.relevance[users[:, None], items]
        )
        return self.examine(np.arange(items.shape[1]))[None, :] * attract

    def buy_prob(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """(n, k) probability of a purchase after a click (the generator's cart and buy steps)."""
        cfg, c = self.config, self.catalog
        rel = cfg.funnel_slope * self.relevance[users[:, None], items]
        over = np.maximum(0.0, c.rel_price[items] - self.users.price_z[users][:, None])
        cart = c.in_stock[items] * _sigmoid(cfg.cart_bias + rel)
        return cart * _sigmoid(cfg.purchase_bias + rel - 2.0 * over)


def _relevance(catalog: Catalog, users: Users, cfg: SynthConfig) -> np.ndarray:
    """The generator's affinity of every shopper for every item at the window's end, plus the
    log of the shopper's taste for the item's category (which picks the listing there)."""
    sim = _Simulator(users, catalog, cfg, np.random.default_rng(0))
    who = np.arange(users.n)
    items = np.broadcast_to(np.arange(len(catalog.leaf)), (users.n, len(catalog.leaf)))
    fav = users.fav_brand[who[:, None], LEAF_TOP[catalog.leaf][None, :]]
    # _affinity reads the favourite brand per row; each item's top category has its own
    aff = np.empty(items.shape)
    for top in np.unique(LEAF_TOP[catalog.leaf]):
        cols = np.flatnonzero(LEAF_TOP[catalog.leaf] == top)
        aff[:, cols] = sim._affinity(
            who,
            items[:, cols],
            fav[:, cols[0]],
            np.ones(users.n),
            np.full(users.n, Q_NONE),
            np.full(users.n, -1),
        )
    pref = np.diff(users.cum_late, axis=1, prepend=0.0)[:, catalog.leaf]
    taste = np.log(np.maximum(pref, 1e-4) * (pref > 0).sum(axis=1, keepdims=True))
    return aff - aff.mean(axis=1, keepdims=True) + np.clip(taste, -6.0, 3.0)


@dataclass(frozen=True)
class Replay:
    """What a replay logged and the lists the known policies would have shown."""

    decisions: list[dict[str, Any]]  # decision-log records (the served JSON-lines format)
    events: pd.DataFrame  # event log with request_id, position, value
    targets: dict[str, pd.DataFrame]  # policy -> (request_id, position, item_id)


def _lists(
    truth: ShopTruth, users: np.ndarray, k: int, pool: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The logging ranking's top ``k + pool`` per request, and each known policy's list as
    positions into it (every policy keeps within the greedy list plus the pool)."""
    rel = truth.relevance[users]
    logged_score = rel + noise * rng.standard_normal(rel.shape)
    support = np.argsort(-logged_score, axis=1)[:, : k + pool]
    true_rel = np.take_along_axis(rel, support, axis=1)
    better = np.tile(np.arange(k), (len(users), 1))
    worse = better.copy()
    for row in range(len(users)):
        better[row] = _swap(true_rel[row], k, +1)
        worse[row] = _swap(true_rel[row], k, -1)
    return support, {
        "logging": np.tile(np.arange(k), (len(users), 1)),
        "better": better,
        "worse": worse,
    }


def _swap(rel: np.ndarray, k: int, sign: int) -> np.ndarray:
    """Slot by slot, swap the greedy item for the pool item that is truly better (sign +1) or
    worse (-1) by the most, each pool item used once."""
    free = list(range(k, len(rel)))
    out = np.arange(k)
    for slot in range(k):
        if not free:
            break
        best = max(free, key=lambda p: sign * rel[p])
        if sign * rel[best] > sign * rel[slot]:
            out[slot] = best
            free.remove(best)
    return out


def replay(
    truth: ShopTruth,
    requests: int,
    k: int = 10,
    epsilon: float = 0.3,
    pool: int = 10,
    noise: float = 1.0,
    seed: int = 0,
    arm: str | None = None,
    model_version: str = "sim",
) -> Replay:
    """Serve ``requests`` lists with the logging policy (epsilon-greedy over a noisy truth) and
    draw each shown item's click and purchase from the truth."""
    rng = np.random.default_rng(seed)
    users = rng.integers(truth.users.n, size=requests)
    support, policies = _lists(truth, users, k, pool, noise, rng)
    settings = Exploration(epsilon=epsilon, pool=pool)
    shown = np.empty((requests, k), dtype=np.int64)
    propensity = np.empty((requests, k))
    explored = np.empty((requests, k), dtype=bool)
    for row in range(requests):
        drawn = explore(np.arange(k), k + pool, settings, lambda: rng)
        shown[row] = support[row, drawn.positions]
        propensity[row], explored[row] = drawn.propensity, drawn.explored
    clicks = rng.random((requests, k)) < truth.click_prob(users, shown)
    bought = clicks & (rng.random((requests, k)) < truth.buy_prob(users, shown))
    request_ids = np.array([f"sim-{seed}-{n}" for n in range(requests)], dtype=object)
    user_ids, item_ids = truth.user_ids, truth.item_ids
    decisions = [
        {
            "ts": float(n),
            "request_id": request_ids[n],
            "endpoint": "recommend",
            "user_id": str(user_ids[users[n]]),
            "model_version": model_version,
            "arm": arm,
            "considered": k + pool,
            "shown": [
                {
                    "item_id": str(item_ids[shown[n, s]]),
                    "position": s,
                    "score": 0.0,
                    "propensity": float(propensity[n, s]),
                    "explored": bool(explored[n, s]),
                    "reason": "exploration (epsilon-greedy draw)" if explored[n, s] else "ranked",
                }
                for s in range(k)
            ],
            "removed": [],
        }
        for n in range(requests)
    ]
    events = _events(truth, users, shown, clicks, bought, request_ids)
    targets = {
        name: _target_frame(request_ids, item_ids[np.take_along_axis(support, pos, axis=1)])
        for name, pos in policies.items()
    }
    return Replay(decisions, events, targets)


def _events(
    truth: ShopTruth,
    users: np.ndarray,
    shown: np.ndarray,
    clicks: np.ndarray,
    bought: np.ndarray,
    request_ids: np.ndarray,
) -> pd.DataFrame:
    frames = []
    for name, mask in (("click", clicks), ("purchase", bought)):
        row, slot = np.nonzero(mask)
        item = shown[row, slot]
        frames.append(
            pd.DataFrame(
                {
                    "event_id": [
                        f"{name}-{request_ids[r]}-{s}" for r, s in zip(row, slot, strict=True)
                    ],
                    "user_id": truth.user_ids[users[row]].astype(str),
                    "item_id": truth.item_ids[item].astype(str),
                    "event": name,
                    "ts": row.astype(np.int64),
                    "request_id": request_ids[row],
                    "position": slot.astype(np.int64),
                    "value": truth.catalog.price[item] if name == "purchase" else np.nan,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _target_frame(request_ids: np.ndarray, items: np.ndarray) -> pd.DataFrame:
    n, k = items.shape
    return pd.DataFrame(
        {
            "request_id": np.repeat(request_ids, k),
            "position": np.tile(np.arange(k), n),
            "item_id": items.reshape(-1).astype(str),
        }
    )


def policy_lists(
    truth: ShopTruth,
    users: np.ndarray,
    policy: str,
    rng: np.random.Generator,
    k: int = 10,
    pool: int = 10,
    noise: float = 1.0,
) -> np.ndarray:
    """(n, k) item indexes a known policy shows ``users`` (one request each)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; valid: {list(POLICIES)}")
    support, policies = _lists(truth, users, k, pool, noise, rng)
    return np.take_along_axis(support, policies[policy], axis=1)


def draw_outcomes(
    truth: ShopTruth, users: np.ndarray, items: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(clicks, order value) per slot, drawn from the truth."""
    clicks = rng.random(items.shape) < truth.click_prob(users, items)
    bought = clicks & (rng.random(items.shape) < truth.buy_prob(users, items))
    return clicks, np.where(bought, truth.catalog.price[items], 0.0)


def true_value(
    truth: ShopTruth,
    policy: str,
    requests: int = 50_000,
    k: int = 10,
    pool: int = 10,
    noise: float = 1.0,
    seed: int = 1,
    reward: str = "click",
) -> float:
    """The policy's exact expected reward per request (clicks, conversions or value) over
    ``requests`` fresh requests: what running it online would measure, without the draw noise."""
    per_reward: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
        "click": truth.click_prob,
        "conversion": lambda u, i: truth.click_prob(u, i) * truth.buy_prob(u, i),
        "value": lambda u, i: (
            truth.click_prob(u, i) * truth.buy_prob(u, i) * truth.catalog.price[i]
        ),
    }
    if reward not in per_reward:
        raise ValueError(f"unknown reward {reward!r}; valid: {sorted(per_reward)}")
    rng = np.random.default_rng(seed)
    users = rng.integers(truth.users.n, size=requests)
    items = policy_lists(truth, users, policy, rng, k, pool, noise)
    return float(per_reward[reward](users, items).sum(axis=1).mean())


def write_replay(done: Replay, out: Path) -> dict[str, Path]:
    """Write a replay as served files: decisions.jsonl, events.jsonl, targets/<policy>.parquet."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"decisions": out / "decisions.jsonl", "events": out / "events.jsonl"}
    with paths["decisions"].open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in done.decisions)
    done.events.to_json(paths["events"], orient="records", lines=True)
    (out / "targets").mkdir(exist_ok=True)
    for name, frame in done.targets.items():
        paths[name] = out / "targets" / f"{name}.parquet"
        frame.to_parquet(paths[name], index=False)
    return paths
