"""What a chat turn searches with: the filters in force, what to relax when nothing matches,
what the shopper excluded, and price order (helpers of :mod:`agents.router`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from agents.compare import item_facts
from agents.shopping_state import SessionState
from agents.tools import ToolContext
from agents.understand import Understanding
from recsys.decision import Filters


@dataclass(frozen=True)
class Relaxation:
    name: str  # what was dropped ("" for the first, exact, attempt)
    drop_keys: tuple[str, ...] = ()  # attribute keys left out
    drop_brand: bool = False

    def __call__(self, filters: Filters) -> Filters:
        kept = tuple((k, v) for k, v in filters.attributes if k not in self.drop_keys)
        return replace(filters, attributes=kept, brands=() if self.drop_brand else filters.brands)


def relaxations(state: SessionState, asked: Iterable[str] = ()) -> list[Relaxation]:
    """The exact filters first; then, when nothing matches, fewer of them (the reply says what
    was dropped). What this turn ``asked`` for is kept longest: "got any in black?" shows black
    items without the earlier constraints rather than other colours."""
    steps = [Relaxation("")]
    keys = list(state.attributes)
    fresh = [k for k in keys if k in set(asked)]
    older = [k for k in keys if k not in fresh]
    if fresh and older:
        steps.append(Relaxation(f"the earlier {', '.join(older)} filter", tuple(older)))
    elif keys:
        steps.append(Relaxation(f"the {keys[-1]} filter", (keys[-1],)))
    if len(keys) > 1 or (fresh and older):
        steps.append(Relaxation("the attribute filters", tuple(keys)))
    if state.brand:
        steps.append(Relaxation("the brand and attribute filters", tuple(keys), True))
    return steps


def as_refine(u: Understanding) -> Understanding:
    """"Do you have them in olive?" asks for a list, not about an item: a question that names
    a catalog value and asks nothing about the items shown is a refinement."""
    if u.intent == "item_question" and u.attributes and not u.asks:
        return replace(u, intent="refine", references=[])
    return u


def turn_only(state: SessionState, u: Understanding) -> SessionState:
    """``state`` with only the constraints this turn stated itself."""
    return replace(
        state, category=u.category, brand=u.brand, attributes=dict(u.attributes),
        price_min=u.price_min, price_max=u.price_max, keywords=list(u.keywords), sort=u.sort,
    )  # fmt: skip


def filters_of(state: SessionState, exclude: set[str]) -> Filters:
    return Filters(
        price_min=state.price_min,
        price_max=state.price_max,
        categories=(state.category,) if state.category else (),
        brands=(state.brand,) if state.brand else (),
        in_stock=True if state.in_stock else None,
        exclude_item_ids=tuple(sorted(exclude)),
        attributes=tuple((k, tuple(v)) for k, v in sorted(state.attributes.items())),
    )


def allowed(ctx: ToolContext, found: list[int], state: SessionState) -> list[int]:
    """Drop what the shopper excluded ("no leather", "not Basicly")."""
    if not state.exclude:
        return found
    out = []
    for i in found:
        facts = item_facts(ctx.catalog, i)
        if any(str(facts.get(k, "")).lower() in {v.lower() for v in vals}
               for k, vals in state.exclude.items()):  # fmt: skip
            continue
        out.append(i)
    return out


def price_sorted(ctx: ToolContext, found: list[int], sort: str | None) -> list[int]:
    if sort is None or ctx.catalog.price is None or not found:
        return found
    prices = np.asarray(ctx.catalog.price, dtype=float)[found]
    prices = np.where(np.isfinite(prices), prices, np.inf if sort == "price_asc" else -np.inf)
    order = np.argsort(prices if sort == "price_asc" else -prices, kind="stable")
    return [found[int(o)] for o in order]
