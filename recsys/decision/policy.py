"""Ordering and choosing among the items that survived the filters: rules, diversity, exploration.

All functions take the eligible candidates best first, as item indexes ``ids`` (n,) with their
scores (n,), and never return an item that was not among them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice

import numpy as np
from scipy.stats import binom

from recsys.catalog import Catalog
from recsys.decision.config import DecisionConfig, Exploration
from recsys.decision.filters import match_mask


def apply_rules(
    catalog: Catalog,
    config: DecisionConfig,
    ids: np.ndarray,
    scores: np.ndarray,
    item_index: dict[str, int],
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Boosted and buried reorder: (ids, adjusted scores, the rule note of each item)."""
    notes: list[str | None] = [None] * len(ids)
    if not (config.boosts or config.bury) or not len(ids):
        return ids, scores, notes
    adjusted = scores.astype(np.float64).copy()
    spread = float(np.std(adjusted)) or 1.0
    for n, boost in enumerate(config.boosts):
        hit = match_mask(catalog, boost.match, ids, item_index)
        adjusted[hit] += boost.weight * spread
        for i in np.flatnonzero(hit):
            notes[i] = f"rule boosts[{n}] ({boost.weight:+g})"
    buried = np.zeros(len(ids), dtype=bool)
    for n, match in enumerate(config.bury):
        hit = match_mask(catalog, match, ids, item_index)
        buried |= hit
        for i in np.flatnonzero(hit):
            notes[i] = f"rule bury[{n}]"
    order = np.lexsort((-adjusted, buried))  # unburied first, then by adjusted score
    return ids[order], adjusted[order], [notes[i] for i in order]


def similarity(catalog: Catalog, ids: np.ndarray) -> np.ndarray:
    """(n, n) catalog similarity: 1 same leaf category, 0.5 same top level, +0.25 same brand."""
    leaf = catalog.leaf(ids)
    top = np.array([c.split(" > ")[0] for c in leaf], dtype=object)
    sim = np.where(leaf[:, None] == leaf[None, :], 1.0, 0.0)
    sim = np.maximum(sim, np.where(top[:, None] == top[None, :], 0.5, 0.0))
    if catalog.brand is not None:
        brand = catalog.brand[ids]
        same = (brand[:, None] == brand[None, :]) & (brand[:, None] != "")
        sim = np.minimum(sim + 0.25 * same, 1.0)
    return sim


def mmr_order(
    catalog: Catalog, ids: np.ndarray, scores: np.ndarray, lam: float, k: int
) -> np.ndarray:
    """Positions of the first ``k`` picks of maximal marginal relevance, in pick order."""
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = float(scores.min()), float(scores.max())
    rel = (scores - low) / (high - low) if high > low else np.ones(n)
    sim = similarity(catalog, ids)  # (n, n)
    chosen: list[int] = []
    closest = np.zeros(n)  # max similarity to the chosen so far
    free = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        value = np.where(free, lam * rel - (1.0 - lam) * closest, -np.inf)
        pick = int(np.argmax(value))
        chosen.append(pick)
        free[pick] = False
        closest = np.maximum(closest, sim[pick])
    return np.asarray(chosen, dtype=np.int64)


def capped(
    catalog: Catalog, config: DecisionConfig, ids: np.ndarray, k: int
) -> tuple[np.ndarray, dict[int, str]]:
    """Walk ``ids`` in order and keep the first ``k`` within the category caps.

    Returns (kept positions, {position: why it was passed over}) for the items skipped before
    the list filled.
    """
    per_leaf = config.diversity.max_per_leaf
    if per_leaf is None and not config.category_caps:  # no cap to walk: the first k
        return np.arange(min(k, len(ids)), dtype=np.int64), {}
    leaf = catalog.leaf(ids)
    caps = [
        (prefix, limit, catalog.category_mask(prefix, "rules.category_caps")[ids])
        for prefix, limit in config.category_caps
    ]
    counts = [0] * len(caps)
    leaf_counts: dict[str, int] = {}
    kept: list[int] = []
    skipped: dict[int, str] = {}
    for pos in range(len(ids)):
        if len(kept) == k:
            break
        if per_leaf is not None and leaf_counts.get(leaf[pos], 0) >= per_leaf:
            skipped[pos] = f"diversity: {per_leaf} items of {leaf[pos]!r} already shown"
            continue
        full = next(
            (c for c, (_, limit, m) in enumerate(caps) if m[pos] and counts[c] >= limit), None
        )
        if full is not None:
            skipped[pos] = f"category cap: {caps[full][1]} items under {caps[full][0]!r}"
            continue
        kept.append(pos)
        leaf_counts[leaf[pos]] = leaf_counts.get(leaf[pos], 0) + 1
        for c, (_, _, mask) in enumerate(caps):
            counts[c] += bool(mask[pos])
    return np.asarray(kept, dtype=np.int64), skipped


@lru_cache(maxsize=256)
def _pool_open(size: int, slots: int, eps: float) -> tuple[float, ...]:
    """Pr(fewer than ``size`` draws before each slot): the pool is not yet empty there."""
    # cached: a scipy call per request would cost more than the draw itself
    return tuple(float(p) for p in binom.cdf(size - 1, np.arange(slots), eps))


@dataclass(frozen=True)
class Explored:
    positions: np.ndarray  # (k,) position in the eligible list of the item shown at each slot
    propensity: np.ndarray  # (k,) probability that this item was shown at this slot
    explored: np.ndarray  # (k,) bool: the slot was drawn, not taken greedily


def explore(
    greedy: np.ndarray,
    n_eligible: int,
    settings: Exploration,
    rng: Callable[[], np.random.Generator],
) -> Explored:
    """Epsilon-greedy over slots: each greedy pick stays with probability 1 - epsilon, else the
    slot shows a uniform draw from the best ``pool`` eligible items not shown greedily.

    The propensity logged is the marginal probability that this item shows at this slot, not
    the one given the earlier slots' draws: per-slot inverse-propensity estimators divide by the
    marginal, and the conditional one (epsilon / pool left) biases them from the second slot on.
    With ``d`` draws before slot ``s`` (Binomial(s, epsilon)) and a pool of ``P`` items, every
    pool item is equally likely to be left, so each shows at ``s`` with probability
    ``epsilon / P * Pr(d < P)``; the greedy pick with ``1 - epsilon * Pr(d < P)``.
    """
    eps = settings.epsilon
    positions = greedy.copy()
    propensity = np.ones(len(greedy))
    explored = np.zeros(len(greedy), dtype=bool)
    if eps <= 0.0:
        return Explored(positions, propensity, explored)  # greedy is certain
    shown = set(greedy.tolist())
    pool = list(islice((p for p in range(n_eligible) if p not in shown), settings.pool))
    size = len(pool)
    if not size:
        return Explored(positions, propensity, explored)  # nothing to draw: greedy is certain
    open_ = _pool_open(size, len(greedy), eps)
    draw = rng()  # made only when there is something to draw
    for slot in range(len(greedy)):
        if not pool or draw.random() >= eps:
            propensity[slot] = 1.0 - eps * open_[slot]
            continue
        propensity[slot] = eps / size * open_[slot]
        positions[slot] = pool.pop(int(draw.integers(len(pool))))
        explored[slot] = True
    return Explored(positions, propensity, explored)
