"""Shoppers and their latent tastes: sparse category preferences that drift, a price level,
favourite brands and colours, who they shop for, how active they are and when."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .catalog import BRAND_TIER, BRAND_TOP, LEAF_TOP, N_LEAVES, Catalog
from .config import SynthConfig
from .frames import object_frame
from .taxonomy import TOPS
from .vocab import COLOURS

KIDS_TOP = TOPS.index("Toys & Baby")
MIN_SESSION_GAP = 2 * 3600  # keeps one shopper's sessions from overlapping
# Relative share of sessions starting in each hour of the day (UTC): lunch and evening peaks.
HOURLY = np.array(
    [
        1.0,
        0.6,
        0.4,
        0.3,
        0.3,
        0.4,
        0.8,
        1.5,
        2.2,
        2.6,
        2.8,
        3.0,
        3.3,
        3.2,
        3.0,
        3.0,
        3.1,
        3.4,
        3.9,
        4.6,
        5.0,
        4.6,
        3.4,
        2.0,
    ]
)


@dataclass
class Users:
    n: int
    cum_early: np.ndarray  # (n, leaves) cumulative leaf preference at the start of the window
    cum_late: np.ndarray  # the preference the user drifts towards
    top_leaf: np.ndarray  # a safe fallback leaf per user
    drift: np.ndarray  # mixing weight of the late preference at the end of the window
    price_z: np.ndarray  # preferred log price relative to the leaf median
    loyalty: np.ndarray  # how strongly the favourite brand pulls
    fav_brand: np.ndarray  # (n, tops) index into BRAND_NAMES
    fav_colours: np.ndarray  # (n, 2) index into COLOURS
    colour_mask: np.ndarray  # bitmask of fav_colours
    profile: np.ndarray  # 0 man, 1 woman, +2 when shopping for kids too
    search_rate: np.ndarray
    first_session: np.ndarray  # offsets into the session arrays; n + 1 entries
    session_user: np.ndarray
    session_ts: np.ndarray  # start time, sorted within each user
    frame: pd.DataFrame  # the users table of the dataset


def _preference(
    n: int, has_kids: np.ndarray, leaf_ok: np.ndarray, cfg: SynthConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A sparse two-level Dirichlet draw; returns (leaf preference, top preference)."""
    alpha = np.full((n, len(TOPS)), cfg.top_alpha)
    alpha[:, KIDS_TOP] = np.where(has_kids, 1.0, cfg.top_alpha * 0.2)
    top = rng.gamma(alpha)
    top /= top.sum(axis=1, keepdims=True)
    within = rng.standard_gamma(cfg.leaf_alpha, size=(n, N_LEAVES), dtype=np.float32) * leaf_ok
    starts = np.flatnonzero(np.r_[True, LEAF_TOP[1:] != LEAF_TOP[:-1]])
    sums = np.add.reduceat(within, starts, axis=1)[:, LEAF_TOP]
    leaf = top[:, LEAF_TOP] * within / np.maximum(sums, 1e-12)
    # A small floor lets everyone wander anywhere now and then, and avoids all-zero rows.
    leaf += 2e-3 * leaf_ok
    leaf /= leaf.sum(axis=1, keepdims=True)
    return leaf, top


def _cumulative(pref: np.ndarray) -> np.ndarray:
    cum = np.cumsum(pref, axis=1)
    cum[:, -1] = 1.0
    return cum.astype(np.float32)


def _favourite_brands(
    n: int, price_z: np.ndarray, catalog: Catalog, rng: np.random.Generator
) -> np.ndarray:
    fav = np.empty((n, len(TOPS)), dtype=np.int64)
    for t in range(len(TOPS)):
        own = np.flatnonzero(t == BRAND_TOP)
        # Big brands win more fans; price-conscious users lean to budget brands.
        score = (
            np.log(catalog.brand_strength[own])[None, :]
            + 1.5 * price_z[:, None] * (BRAND_TIER[own] - 1)[None, :]
            + rng.gumbel(size=(n, len(own)))
        )
        fav[:, t] = own[np.argmax(score, axis=1)]
    return fav


def _session_times(
    n_sessions: np.ndarray, cfg: SynthConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Session start times: spread over each user's active stretch of the window."""
    n = len(n_sessions)
    joined = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0.0, 0.8, n))
    left = np.where(rng.random(n) < 0.75, 0.99, rng.uniform(joined + 0.15, 0.99))
    user = np.repeat(np.arange(n), n_sessions)
    frac = joined[user] + (left - joined)[user] * rng.random(len(user))
    frac = np.sort(user + frac) - user  # sorted within each user
    day = np.floor(frac * cfg.days).astype(np.int64)
    hour = rng.choice(24, size=len(user), p=HOURLY / HOURLY.sum())
    ts = (
        cfg.end_ts
        - cfg.days * 86_400
        + day * 86_400
        + hour * 3600
        + rng.integers(0, 3600, len(user))
    )
    ts = np.sort(user.astype(np.int64) * 10**10 + ts) - user.astype(np.int64) * 10**10
    first = np.r_[0, np.cumsum(n_sessions)]
    k = np.arange(len(user)) - first[user]
    shifted = ts - k * MIN_SESSION_GAP + user.astype(np.int64) * 10**11
    ts = np.maximum.accumulate(shifted) - user.astype(np.int64) * 10**11 + k * MIN_SESSION_GAP
    return user, ts


def build_users(n: int, catalog: Catalog, cfg: SynthConfig, rng: np.random.Generator) -> Users:
    leaf_ok = (catalog.leaf_size > 0).astype(np.float64)
    has_kids = rng.random(n) < cfg.kids_rate
    early, top_early = _preference(n, has_kids, leaf_ok, cfg, rng)
    late, top_late = _preference(n, has_kids, leaf_ok, cfg, rng)
    drift = np.clip(cfg.drift * rng.uniform(0.4, 1.6, n), 0.0, 1.0)
    price_z = rng.normal(0.0, 0.45, n)
    loyalty = rng.beta(1.5, 2.5, n)
    fav_colours = np.argsort(rng.gumbel(size=(n, len(COLOURS))), axis=1)[:, :2]
    colour_mask = (np.int64(1) << fav_colours[:, 0]) | (np.int64(1) << fav_colours[:, 1])
    woman = rng.random(n) < 0.5
    profile = woman.astype(np.int64) + 2 * has_kids
    r = cfg.search_rate
    # Some people search for everything, others browse; the mean is the configured rate.
    search_rate = rng.beta(2.0, 2.0 * (1 - r) / r, n) if 0 < r < 1 else np.full(n, r)

    mu = np.log(max(cfg.sessions_mean - 0.5, 0.1)) - cfg.sessions_sigma**2 / 2
    n_sessions = np.minimum(
        1 + np.floor(rng.lognormal(mu, cfg.sessions_sigma, n)), cfg.max_sessions
    ).astype(np.int64)
    session_user, session_ts = _session_times(n_sessions, cfg, rng)
    fav_brand = _favourite_brands(n, price_z, catalog, rng)

    width = max(6, len(str(n - 1)))
    bands = np.array(["budget", "mid", "premium"], dtype=object)
    tops = np.array(TOPS, dtype=object)
    frame = object_frame(
        {
            "user_id": np.array([f"u{i:0{width}d}" for i in range(n)], dtype=object),
            "home_category": tops[np.argmax(top_early, axis=1)],
            "late_category": tops[np.argmax(top_late, axis=1)],
            "price_band": bands[np.digitize(price_z, [-0.25, 0.25])],
            "audience": np.where(woman, "women", "men").astype(object),
            "has_kids": has_kids,
            "brand_loyalty": np.round(loyalty, 3),
            "favourite_colours": [f"{COLOURS[a]},{COLOURS[b]}" for a, b in fav_colours],
        }
    )
    return Users(
        n=n,
        cum_early=_cumulative(early),
        cum_late=_cumulative(late),
        top_leaf=np.argmax(early, axis=1),
        drift=drift,
        price_z=price_z,
        loyalty=loyalty,
        fav_brand=fav_brand,
        fav_colours=fav_colours,
        colour_mask=colour_mask,
        profile=profile,
        search_rate=search_rate,
        first_session=np.r_[0, np.cumsum(n_sessions)],
        session_user=session_user,
        session_ts=session_ts,
        frame=frame,
    )
