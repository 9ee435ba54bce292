"""What a shopper has asked for so far in a session, carried from turn to turn.

Constraints accumulate until the shopper changes them: a new category replaces the old one and
drops the attribute constraints its items don't have (the audience stays: it describes the
shopper, not the product); a new value for a key replaces the old one unless the turn adds ("or
black", "also red"); a new price bound replaces that bound; "any price", "any brand" and "start
over" clear. ``shown`` and ``last_list`` are filled by whoever shows items (:meth:`with_shown`),
and references ("the second one") resolve against ``last_list``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: understand imports this module
    from agents.understand import Understanding

MAX_SHOWN = 200  # ids kept in `shown`, the most recent
NOT_SLOT_CHANGES = {
    "item_question",
    "compare",
    "greeting",
    "unknown",
}  # a question changes no filter


@dataclass(frozen=True)
class SessionState:
    category: str | None = None
    brand: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    exclude: dict[str, list[str]] = field(default_factory=dict)  # key ("brand" too) -> values
    price_min: float | None = None
    price_max: float | None = None
    keywords: list[str] = field(default_factory=list)
    sort: str | None = None  # "price_asc" / "price_desc"
    in_stock: bool = False
    shown: list[str] = field(default_factory=list)  # every id shown, oldest first
    last_list: list[str] = field(default_factory=list)  # the list shown last
    focus: str | None = None  # the item last pointed at on its own: what "it" means
    turns: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None) -> SessionState:
        """A state from its dict; what is missing or malformed is left at its default, so an
        old or damaged session record never breaks a turn (``{"constraints": {"price_max":
        40}}``, the agent's older record, is read too)."""
        doc = dict(doc or {})
        doc = (
            {**doc, **(doc.get("constraints") or {})}
            if isinstance(doc.get("constraints"), dict)
            else doc
        )

        def text(v: Any) -> str | None:
            return v if isinstance(v, str) and v else None

        def price(v: Any) -> float | None:
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            return float(v) if ok and v >= 0 else None

        def strings(v: Any) -> list[str]:
            return [str(x) for x in v if isinstance(x, str | int)] if isinstance(v, list) else []

        def facets(v: Any) -> dict[str, list[str]]:
            items = v.items() if isinstance(v, dict) else ()
            return {str(k): s for k, vals in items if (s := strings(vals))}

        turns = doc.get("turns")
        return cls(
            category=text(doc.get("category")),
            brand=text(doc.get("brand")),
            attributes=facets(doc.get("attributes")),
            exclude=facets(doc.get("exclude")),
            price_min=price(doc.get("price_min")),
            price_max=price(doc.get("price_max")),
            keywords=strings(doc.get("keywords")),
            sort=text(doc.get("sort")),
            in_stock=doc.get("in_stock") is True,
            shown=strings(doc.get("shown"))[-MAX_SHOWN:],
            last_list=strings(doc.get("last_list")),
            focus=text(doc.get("focus")),
            turns=turns if isinstance(turns, int) else 0,
        )

    def with_shown(self, item_ids: Iterable[str]) -> SessionState:
        """The state after showing ``item_ids`` as one list: references now point into it."""
        ids = [str(i) for i in item_ids]
        return replace(self, last_list=ids, shown=[*self.shown, *ids][-MAX_SHOWN:], focus=None)

    def constraints(self) -> dict[str, Any]:
        """The filters in force, only those set."""
        out = {
            "category": self.category,
            "brand": self.brand,
            "attributes": self.attributes,
            "exclude": self.exclude,
            "price_min": self.price_min,
            "price_max": self.price_max,
            "in_stock": self.in_stock,
        }
        return {k: v for k, v in out.items() if v not in (None, {}, [], False)}


def update(
    state: SessionState | None,
    understanding: Understanding,
    shown_prices: Mapping[str, float | None] | None = None,
) -> SessionState:
    """``state`` after the turn ``understanding`` read. ``shown_prices`` (item id -> price of
    the items shown) turns "cheaper" / "pricier" into a bound: below the cheapest referenced
    item, else 0.8 x the shown median; above the dearest referenced item, else above the
    median. Without prices a relative request leaves the bounds as they are."""
    u = understanding
    s = state or SessionState()
    if "all" in u.clears:
        s = SessionState(shown=s.shown, turns=s.turns)
    attributes = {k: list(v) for k, v in s.attributes.items()}
    exclude = {k: list(v) for k, v in s.exclude.items()}
    category, brand, lo, hi = s.category, s.brand, s.price_min, s.price_max
    in_stock = s.in_stock
    if "filters" in u.clears:  # "remove the filters": the search stays, its constraints go
        attributes, exclude, brand, lo, hi, in_stock = {}, {}, None, None, None, False
    for cleared in u.clears:
        if cleared == "price":
            lo = hi = None
        elif cleared == "brand":
            brand = None
            exclude.pop("brand", None)
        elif cleared == "category":
            category = None
        elif cleared not in {"all", "filters"}:
            attributes.pop(cleared, None)
            exclude.pop(cleared, None)
    picked = [s.last_list[p] for p in u.references if -len(s.last_list) <= p < len(s.last_list)]
    focus = picked[0] if len(picked) == 1 else s.focus
    if u.intent in NOT_SLOT_CHANGES:
        return replace(
            s,
            in_stock=in_stock,
            category=category,
            brand=brand,
            attributes=attributes,
            exclude=exclude,
            price_min=lo,
            price_max=hi,
            focus=focus,
            turns=s.turns + 1,
        )
    keywords = list(s.keywords)
    if u.intent == "find" and u.category is None and u.category_options:
        category = None  # "a jacket" while on dog toys: another product, not yet placed
    if u.category and u.category != category:
        category = u.category
        keep = set(u.category_keys) if u.category_keys is not None else None
        attributes = {k: v for k, v in attributes.items() if keep is None or k in keep}
        exclude = {k: v for k, v in exclude.items() if keep is None or k in keep or k == "brand"}
        keywords = []
    for key, values in u.attributes.items():
        old = attributes.get(key, []) if u.additive else []
        attributes[key] = list(dict.fromkeys([*old, *values]))
        if key in exclude:
            exclude[key] = [v for v in exclude[key] if v not in values]
    for key, values in u.exclude.items():
        exclude[key] = list(dict.fromkeys([*exclude.get(key, []), *values]))
        if key in attributes:
            attributes[key] = [v for v in attributes[key] if v not in values]
        if key == "brand" and brand in values:
            brand = None
    if u.brand:
        brand = u.brand
        exclude["brand"] = [b for b in exclude.get("brand", []) if b != u.brand]
    if u.price_min is not None:
        lo = u.price_min
        hi = hi if u.price_max is not None or hi is None or hi >= lo else None
    if u.price_max is not None:
        hi = u.price_max
        lo = lo if lo is None or lo <= hi else None
    lo, hi = _relative(u, s, picked, shown_prices, lo, hi)
    if u.intent in {"guidance", "item_question", "compare", "greeting"}:
        pass  # a question adds no search words ("any tips for choosing jeans?")
    elif u.intent == "find" and (u.category is not None or u.keywords):
        keywords = list(u.keywords)  # a new request: the old search words go
    elif u.keywords:
        fresh = u.intent == "recommend" or u.category is not None
        keywords = list(u.keywords) if fresh else list(dict.fromkeys([*keywords, *u.keywords]))
    return SessionState(
        category=category,
        brand=brand,
        attributes={k: v for k, v in attributes.items() if v},
        exclude={k: v for k, v in exclude.items() if v},
        price_min=lo,
        price_max=hi,
        keywords=keywords,
        sort=u.sort or (None if u.intent == "find" else s.sort),
        in_stock=u.in_stock or in_stock,
        shown=s.shown,
        last_list=s.last_list,
        focus=focus,
        turns=s.turns + 1,
    )


def _relative(
    u: Understanding,
    s: SessionState,
    picked: list[str],
    shown_prices: Mapping[str, float | None] | None,
    lo: float | None,
    hi: float | None,
) -> tuple[float | None, float | None]:
    """The bounds after "cheaper" / "pricier", from the prices of what was shown."""
    if u.intent not in {"cheaper", "pricier"} or not shown_prices:
        return lo, hi
    ids = picked or s.last_list
    prices = [p for i in ids if (p := shown_prices.get(i)) is not None and math.isfinite(p)]
    if not prices:
        return lo, hi
    if u.intent == "cheaper":
        cap = round(min(prices) - 0.01, 2) if picked else round(0.8 * statistics.median(prices), 2)
        hi = cap if hi is None else min(hi, cap)
        return (lo if lo is None or lo < hi else None), hi
    floor = round((max(prices) if picked else statistics.median(prices)) + 0.01, 2)
    lo = floor if lo is None else max(lo, floor)
    return lo, (hi if hi is None or hi > lo else None)
