"""Caller filters and the catalog rules that remove items: each removal keeps its reason."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np

from recsys.catalog import Catalog, CatalogError
from recsys.decision.config import DecisionConfig, Match


@dataclass(frozen=True)
class Filters:
    """What the caller allows. None leaves a setting to the decision config."""

    price_min: float | None = None
    price_max: float | None = None
    categories: tuple[str, ...] = ()  # category paths; an item under any of them passes
    brands: tuple[str, ...] = ()
    in_stock: bool | None = None  # True: in-stock only; False: also out-of-stock items
    exclude_purchased: bool | None = None
    exclude_item_ids: tuple[str, ...] = ()
    # (key, allowed values) pairs, hashable where a dict is not: an item passes when, for every
    # key, its value (any case) is one of that key's values
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        # a {key: [values]} dict or lists inside would make the filters unhashable
        pairs = self.attributes.items() if isinstance(self.attributes, Mapping) else self.attributes
        object.__setattr__(self, "attributes", tuple((str(k), tuple(v)) for k, v in pairs))
        for key, values in self.attributes:
            if not values:
                raise CatalogError(
                    f"filters.attributes.{key}: give at least one value to allow",
                    param=f"filters.attributes.{key}",
                )
        for name in ("price_min", "price_max"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise CatalogError(
                    f"filters.{name} must be a finite number >= 0, got {value}",
                    param=f"filters.{name}",
                )
        if (
            self.price_min is not None
            and self.price_max is not None
            and self.price_min > self.price_max
        ):
            raise CatalogError(
                f"filters.price_min {self.price_min} is above filters.price_max {self.price_max}",
                param="filters.price_min",
            )


def match_mask(
    catalog: Catalog, match: Match, ids: np.ndarray, item_index: dict[str, int]
) -> np.ndarray:
    """(n,) bool: which of the item indexes ``ids`` the rule's match covers."""
    hit = np.zeros(len(ids), dtype=bool)
    if match.item_ids:
        wanted = np.array([item_index[i] for i in match.item_ids if i in item_index], np.int64)
        hit |= np.isin(ids, wanted)
    if match.brands:
        keys = catalog.brand_keys(match.brands, param="rules.brands")
        hit |= np.isin(catalog.require("brand", "rules.brands")[ids], list(keys))
    for prefix in match.categories:
        hit |= catalog.category_mask(prefix, param="rules.categories")[ids]
    return hit


def removal_reasons(
    catalog: Catalog,
    filters: Filters,
    config: DecisionConfig,
    ids: np.ndarray,
    purchased: Collection[int],
    item_index: dict[str, int],
) -> tuple[np.ndarray, np.ndarray]:
    """(n,) object: why each candidate is removed (the first failing rule), None if it stays;
    and (n,) bool: which stay.

    Raises :class:`CatalogError` for a filter naming a value or column the catalog lacks.
    """
    reasons = np.full(len(ids), None, dtype=object)
    stays = np.ones(len(ids), dtype=bool)  # where reasons is None, without comparing objects

    def remove(mask: np.ndarray, reason: str) -> None:
        hit = mask & stays
        reasons[hit] = reason
        stays[hit] = False

    if filters.exclude_item_ids:
        excluded = [item_index[i] for i in filters.exclude_item_ids if i in item_index]
        remove(np.isin(ids, excluded), "excluded by the caller")
    purchase_rule = (
        config.exclude_purchased if filters.exclude_purchased is None else filters.exclude_purchased
    )
    if purchase_rule and purchased:
        bought = np.zeros(len(catalog), dtype=bool)  # a mask beats np.isin at this size
        given = np.fromiter(purchased, dtype=np.int64, count=len(purchased))
        bought[given[(given >= 0) & (given < len(bought))]] = True
        remove(bought[ids], "already purchased")
    stock_rule = config.hide_out_of_stock if filters.in_stock is None else filters.in_stock
    if stock_rule and catalog.in_stock is not None:
        remove(~catalog.in_stock[ids], "out of stock")
    elif filters.in_stock:  # asked for explicitly: a catalog without stock can't honour it
        catalog.require("in_stock", "filters.in_stock")
    if filters.price_min is not None or filters.price_max is not None:
        asked = "filters.price_min" if filters.price_min is not None else "filters.price_max"
        price = catalog.require("price", asked)[ids]
        low = -np.inf if filters.price_min is None else filters.price_min
        high = np.inf if filters.price_max is None else filters.price_max
        remove(np.isnan(price), "price unknown (a price range was asked for)")
        remove((price < low) | (price > high), f"price outside [{low:g}, {high:g}]")
    if filters.categories:
        inside = np.zeros(len(ids), dtype=bool)
        for prefix in filters.categories:
            inside |= catalog.category_mask(prefix, param="filters.categories")[ids]
        remove(~inside, f"category not in {list(filters.categories)}")
    if filters.brands:
        keys = catalog.brand_keys(filters.brands, param="filters.brands")
        brand = catalog.require("brand", "filters.brands")[ids]
        remove(~np.isin(brand, list(keys)), f"brand not in {sorted(keys)}")
    for key, wanted in filters.attributes:
        param = f"filters.attributes.{key}"
        table = catalog.attribute_table(param)
        fail = ~table.match(key, wanted, ids, param)
        if not fail.any():
            continue
        # one reason per value the removed items hold, so the log says what each one was
        shown = table.shown[table.key(key, param)][ids]
        for value in sorted(set(shown[fail])):
            reason = (
                f"attribute {key} is {value}, not one of {list(wanted)}"
                if value
                else f"no {key} attribute (one of {list(wanted)} was asked for)"
            )
            remove(fail & (shown == value), reason)
    return reasons, stays


def price_phrase(low: float | None, high: float | None) -> str | None:
    """How a price range reads to a shopper ("priced 20 to 50", "priced up to 50", "priced 20
    or more"); None without bounds. Reasons and chat replies both say it this way."""
    if low is not None and high is not None:
        return f"priced {low:g} to {high:g}"
    if high is not None:
        return f"priced up to {high:g}"
    if low is not None:
        return f"priced {low:g} or more"
    return None
