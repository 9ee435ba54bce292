"""The product catalogue: items spread over the leaves of the tree, each with a brand, a price,
attributes, readable text and a latent quality that drives its long-tail popularity."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import SynthConfig
from .frames import object_frame
from .taxonomy import LEAVES, TOPS
from .vocab import (
    AUDIENCES,
    BRANDS,
    COLOURS,
    SEASONS,
    SERIES,
    TIER_PRICE,
    TIER_QUALITY,
    TIERS,
    WARM_MATERIALS,
    render_description,
    render_title,
)

N_LEAVES = len(LEAVES)
LEAF_TOP = np.array([TOPS.index(leaf.top) for leaf in LEAVES])
LEAF_PRICE = np.array([leaf.spec.price for leaf in LEAVES])
LEAF_SIGMA = np.array([leaf.spec.sigma for leaf in LEAVES])
LEAF_INTERVAL = np.array([leaf.spec.interval for leaf in LEAVES])

BRAND_NAMES: tuple[str, ...] = tuple(
    name for top in TOPS for names in BRANDS[top] for name in names
)
BRAND_TOP = np.array([TOPS.index(top) for top in TOPS for names in BRANDS[top] for _ in names])
BRAND_TIER = np.array(
    [tier for top in TOPS for tier, names in enumerate(BRANDS[top]) for _ in names]
)


@dataclass
class Catalog:
    """Items in internal order (grouped by leaf); arrays are indexed by that position."""

    items: pd.DataFrame  # contract frame, in internal order
    item_ids: np.ndarray  # object array of "i00042" strings
    attrs: list[dict[str, str]]
    leaf: np.ndarray
    top: np.ndarray
    brand: np.ndarray
    tier: np.ndarray
    price: np.ndarray
    rel_price: np.ndarray  # log(price / leaf median): the price level the user reacts to
    colour: np.ndarray  # index into COLOURS, -1 where the leaf has no colour
    audience: np.ndarray  # index into AUDIENCES, 0 (unisex) where the leaf has no audience
    season: np.ndarray  # index into SEASONS, -1 where not applicable
    quality: np.ndarray  # latent log-quality
    in_stock: np.ndarray
    brand_strength: np.ndarray  # per entry of BRAND_NAMES
    leaf_start: np.ndarray  # items of leaf L are positions leaf_start[L]:leaf_start[L + 1]
    log_exposure: np.ndarray  # how prominently the shop shows the item
    exposure_cum: np.ndarray  # cumulative exposure weight over internal order

    @property
    def leaf_size(self) -> np.ndarray:
        return np.diff(self.leaf_start)


def _leaf_counts(n_items: int, cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Items per leaf. A small shop stocks fewer product types rather than a handful of items
    in every one, so the number of stocked leaves grows with the catalogue (two per top
    category at least)."""
    weight = rng.lognormal(0.0, cfg.leaf_size_sigma, N_LEAVES)
    n_active = int(np.clip(round(n_items / cfg.items_per_leaf), 2 * len(TOPS), N_LEAVES))
    n_active = min(n_active, n_items)
    # Two leaves per top category first (by weight), then the heaviest of the rest.
    order = np.argsort(-weight, kind="stable")
    rank_in_top = np.empty(N_LEAVES, dtype=np.int64)
    for t in range(len(TOPS)):
        own = order[LEAF_TOP[order] == t]
        rank_in_top[own] = np.arange(len(own))
    priority = np.lexsort((np.argsort(order), rank_in_top >= 2))
    active = np.zeros(N_LEAVES, dtype=bool)
    active[priority[:n_active]] = True
    share = np.where(active, weight, 0.0)
    return active + rng.multinomial(n_items - n_active, share / share.sum())


def _shop_price(raw: np.ndarray) -> np.ndarray:
    """Round to the price points shops actually use: 4.49, 39.99, 249.99."""
    small = np.maximum(np.round(raw * 2) / 2, 1.0) - 0.01
    mid = np.round(raw) - 0.01
    large = np.round(raw / 10) * 10 - 0.01
    return np.round(np.where(raw < 10, small, np.where(raw < 200, mid, large)), 2)


def _draw_attrs(leaf_index: int, count: int, rng: np.random.Generator) -> list[dict[str, str]]:
    spec = LEAVES[leaf_index].spec
    columns: dict[str, list[str]] = {}
    for key, values in spec.attrs.items():
        # Earlier values in a vocabulary are the common ones (black before teal).
        weight = 1.0 / np.sqrt(np.arange(1, len(values) + 1))
        picks = rng.choice(len(values), size=count, p=weight / weight.sum())
        columns[key] = [values[p] for p in picks]
    return [{key: columns[key][i] for key in columns} for i in range(count)]


def build_catalog(n_items: int, cfg: SynthConfig, rng: np.random.Generator) -> Catalog:
    counts = _leaf_counts(n_items, cfg, rng)
    leaf = np.repeat(np.arange(N_LEAVES), counts)
    leaf_start = np.concatenate([[0], np.cumsum(counts)])
    top = LEAF_TOP[leaf]

    # Some brands dominate their category; the draw is per top category.
    strength = rng.lognormal(0.0, 0.7, len(BRAND_NAMES))
    brand = np.empty(n_items, dtype=np.int64)
    for t in range(len(TOPS)):
        rows = np.flatnonzero(top == t)
        own = np.flatnonzero(t == BRAND_TOP)
        brand[rows] = rng.choice(own, size=len(rows), p=strength[own] / strength[own].sum())
    tier = BRAND_TIER[brand]

    raw = LEAF_PRICE[leaf] * TIER_PRICE[tier] * rng.lognormal(0.0, LEAF_SIGMA[leaf])
    price = _shop_price(raw)
    rel_price = np.log(price / LEAF_PRICE[leaf])

    quality = TIER_QUALITY[tier] + rng.normal(0.0, cfg.quality_sigma, n_items)
    brand_pull = 0.5 * np.log(strength[brand])
    log_exposure = cfg.exposure_power * (quality + brand_pull)
    in_stock = rng.random(n_items) < cfg.in_stock_rate

    attrs: list[dict[str, str]] = []
    for li in range(N_LEAVES):
        attrs.extend(_draw_attrs(li, int(counts[li]), rng))
    series = rng.integers(-len(SERIES), len(SERIES), n_items)  # negative: no product line

    colour_ix = {c: i for i, c in enumerate(COLOURS)}
    colour = np.array([colour_ix.get(a.get("colour", ""), -1) for a in attrs], dtype=np.int64)
    audience = np.array([AUDIENCES.index(a.get("audience", "unisex")) for a in attrs])
    season = np.array([SEASONS.index(a["season"]) if "season" in a else -1 for a in attrs])
    # A warm material counts as winter wear even where the leaf has no season attribute.
    warm = np.array([a.get("material") in WARM_MATERIALS for a in attrs])
    season = np.where((season < 0) & warm, SEASONS.index("winter"), season)

    # Ids are shuffled so that they carry no hint of the category.
    width = max(5, len(str(n_items - 1)))
    perm = rng.permutation(n_items)
    item_ids = np.array([f"i{p:0{width}d}" for p in perm], dtype=object)

    titles, descriptions = [], []
    for i in range(n_items):
        spec = LEAVES[leaf[i]].spec
        name = BRAND_NAMES[brand[i]]
        line = SERIES[series[i]] if series[i] >= 0 else None
        titles.append(render_title(name, spec.noun, attrs[i], line))
        descriptions.append(render_description(name, spec.noun, TIERS[tier[i]], attrs[i], rng))

    items = object_frame(
        {
            "item_id": item_ids,
            "title": titles,
            "brand": np.array(BRAND_NAMES, dtype=object)[brand],
            "category": np.array([lf.path for lf in LEAVES], dtype=object)[leaf],
            "price": price,
            "description": descriptions,
            "in_stock": in_stock,
            "attributes": [json.dumps(a) for a in attrs],
        }
    )
    return Catalog(
        items=items,
        item_ids=item_ids,
        attrs=attrs,
        leaf=leaf,
        top=top,
        brand=brand,
        tier=tier,
        price=price,
        rel_price=rel_price,
        colour=colour,
        audience=audience,
        season=season,
        quality=quality,
        in_stock=in_stock,
        brand_strength=strength,
        leaf_start=leaf_start,
        log_exposure=log_exposure,
        exposure_cum=np.cumsum(np.exp(log_exposure)),
    )
