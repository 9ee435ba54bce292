"""Seeded simulated shoppers for benchmarks/agent_tasks.py: dialogues built from a catalog's truth.

Each dialogue is one shopper (a known user of the bundle) after one leaf category: a budget
between the category's 40th and 80th price percentile (in-stock items the shopper has not
bought), optionally a person it is for (when the category's items name an audience), and an
attribute value (colour, material, scent, ...) that at least two in-budget items have. The turns
cover every intent once: find with the budget, refine by the attribute, compare shown items by
position, ask for cheaper ones, ask for personal picks and ask for buying advice, in a seeded
order (refine always before cheaper, so that the attribute stays feasible).

The phrasings are written here, the way shoppers type, independently of the parser's tests; the
parser must not be tuned to them. Nothing here runs the chat: :mod:`benchmarks.agent_tasks` does.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recsys.artifacts import Bundle
from recsys.catalog import Catalog
from recsys.decision.stage import PurchaseLookup

INTENTS = ("find", "refine", "compare", "cheaper", "recommend", "guidance")

# --- phrasings ---------------------------------------------------------------------------------
# {plural}: "hiking backpacks"; {one}: "a hiking backpack", "a pair of gloves", "green tea";
# {budget}: "60"; {who}: "my wife"; {value}: "navy".

FIND = (
    "I'm after {plural} under {budget}",
    "got any {plural} for less than {budget}?",
    "show me {plural} under ${budget}",
    "looking for {one}, nothing over {budget}",
    "can you find me {one}? I don't want to spend more than {budget}",
    "do you sell {plural}? my budget is {budget}",
    "hi! I'd like {one}, up to {budget}",
    "{plural} below {budget} please",
    "I want to buy {one}. {budget} max",
)
FIND_FOR = (
    "need {one} for {who}, max {budget}",
    "I'm shopping for {who}: {plural} under {budget}",
    "{one} for {who}, budget {budget}",
    "looking for {plural} for {who}, no more than {budget}",
    "gift for {who} - {one} under {budget}?",
)
REFINE: dict[str, tuple[str, ...]] = {
    "colour": (
        "show me ones in {value}",
        "got any in {value}?",
        "only {value} ones please",
        "do you have them in {value}?",
        "{value} would be better",
        "I'd prefer {value}",
        "what about {value}?",
    ),
    "material": (
        "any made of {value}?",
        "I'd prefer {value}",
        "only {value} ones please",
        "what about {value} ones?",
        "show me the {value} ones",
    ),
    "skin_type": (
        "it's for {value} skin",
        "something for {value} skin please",
        "I have {value} skin",
    ),
    "hair_type": ("it's for {value} hair", "I have {value} hair", "anything for {value} hair?"),
    "": (  # any other descriptive key
        "{value} ones please",
        "any {value} ones?",
        "I'd prefer {value}",
        "only {value}",
        "show me the {value} ones",
        "do you have {value}?",
    ),
}
# keys a shopper names by value; sizes and measures ("65 l", "eu 36") read unnaturally this way
REFINE_KEYS = (
    "colour",
    "material",
    "scent",
    "flavour",
    "connectivity",
    "waterproofing",
    "season",
    "fit",
    "type",
    "diet",
    "shape",
    "animal",
    "spf",
    "skin_type",
    "hair_type",
    "flower",
)
COMPARE: dict[tuple[int, int], tuple[str, ...]] = {
    (0, 1): (
        "compare the first two",
        "which of the first two is better?",
        "how do the top two differ?",
        "what's the difference between the first and second one?",
        "can you put the first two side by side?",
    ),
    (0, 2): (
        "compare the 1st and 3rd",
        "how does the first one stack up against the third?",
        "1 vs 3?",
        "tell me the differences between number 1 and number 3",
    ),
    (1, 2): (
        "compare the second and the third",
        "2nd or 3rd, which is better?",
        "what's the difference between #2 and #3",
    ),
    (0, -1): (
        "first or last one, which would you pick?",
        "compare the first and the last one",
    ),
}
CHEAPER = (
    "anything cheaper?",
    "these are a bit pricey, got cheaper ones?",
    "hmm, too expensive for me",
    "something more affordable?",
    "can you show me lower priced ones?",
    "cheaper options please",
    "do you have anything less expensive?",
)
RECOMMEND = (
    "what do you suggest for me?",
    "anything you'd recommend for me?",
    "pick something for me based on what I like",
    "what would you recommend for me",
    "based on my past orders, what should I get?",
    "show me stuff I might like",
)
GUIDANCE = (
    "what should I look for in {one}?",
    "any tips for choosing {plural}?",
    "how do I pick good {plural}?",
    "what matters when buying {plural}?",
    "I know nothing about {plural}, what should I consider?",
    "help me choose {one}",
)
RECIPIENTS = {
    "men": ("my husband", "my dad", "my brother"),
    "women": ("my wife", "my mum", "my sister", "my girlfriend"),
    "boys": ("my son", "my nephew"),
    "girls": ("my daughter", "my niece"),
}
PAIRS = {
    "jeans",
    "shorts",
    "gloves",
    "slippers",
    "wellies",
    "trainers",
    "boots",
    "shoes",
    "sandals",
    "socks",
}
MASS = {"tea", "pasta", "litter", "food", "coffee", "rice"}  # no "a ..." for these


@dataclass
class TurnPlan:
    intent: str
    message: str
    positions: list[int] = field(default_factory=list)  # compare: positions in the last list
    fallback: str = ""  # compare: the message when the last list is too short for `positions`
    placement: str = ""  # recommend, guidance: "opening" (before any list) or "follow-up"


@dataclass
class Dialogue:
    id: str
    user_id: str
    category: str  # the leaf path
    budget: float
    audience: str | None  # the audience value said ("for my wife": women), if any
    key: str  # the refine attribute key and value
    value: str
    turns: list[TurnPlan]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "category": self.category,
            "budget": self.budget,
            "audience": self.audience,
            "refine": {self.key: self.value},
        }


class ShopTruth:
    """The catalog's columns as arrays, and each user's purchases: what the checks compare to."""

    def __init__(self, bundle: Bundle) -> None:
        items: Catalog = bundle.items
        self.catalog = items
        self.ids = np.asarray(items.item_ids, dtype=object)
        self.index = items.index
        self.category = np.asarray(items.require("category", "bench"), dtype=object)
        self.price = np.asarray(items.require("price", "bench"), dtype=float)
        stock = items.in_stock
        self.in_stock = np.ones(len(self.ids), bool) if stock is None else np.asarray(stock, bool)
        self.attributes = items.attribute_table()
        self.users = [str(u) for u in bundle.user_ids]
        rows = {u: i for i, u in enumerate(self.users)}
        self._purchases = PurchaseLookup(rows, bundle.sequences)

    def purchased(self, user_id: str) -> set[int]:
        return set(self._purchases(user_id))

    def under(self, category: str) -> np.ndarray:
        """(I,) bool: items in ``category`` or below it."""
        return np.asarray(self.catalog.category_mask(category), dtype=bool)

    def value_of(self, key: str, i: int) -> set[str]:
        """Item ``i``'s lowercase value(s) of ``key`` (empty when absent or unknown key)."""
        if key not in self.attributes.lower:
            return set()
        if key in self.attributes.many:
            return set(self.attributes.many[key][i])
        v = str(self.attributes.lower[key][i])
        return {v} if v else set()

    def has(self, key: str, value: str) -> np.ndarray:
        """(I,) bool: items whose ``key`` is ``value`` (any case)."""
        if key not in self.attributes.lower:
            return np.zeros(len(self.ids), bool)
        return np.asarray(self.attributes.lower[key] == value.lower(), dtype=bool)

    def eligible(self, user_id: str) -> np.ndarray:
        """(I,) bool: what a list may show this shopper: in stock, not bought before."""
        ok = self.in_stock.copy()
        bought = list(self.purchased(user_id))
        ok[bought] = False
        return ok


def noun_forms(leaf: str) -> tuple[str, str]:
    """(plural, one) of a leaf name: ("hiking backpacks", "a hiking backpack")."""
    plural = leaf.split(" > ")[-1].lower()
    last = plural.split()[-1]
    if last in PAIRS:
        return plural, f"a pair of {plural}"
    if last in MASS or not last.endswith("s") or last.endswith("ss"):
        return plural, plural
    if last.endswith("ies"):
        single = plural[:-3] + "y"
    elif last.endswith("ves"):
        single = plural[:-3] + "f"
    elif last.endswith(("xes", "ches", "shes", "sses")):
        single = plural[:-2]
    else:
        single = plural[:-1]
    return plural, f"{'an' if single[0] in 'aeiou' else 'a'} {single}"


def say_budget(value: float) -> float:
    """A budget as a shopper says it: whole units, to 5 above 50."""
    return float(round(value / 5) * 5) if value > 50 else float(max(1, round(value)))


def money(value: float) -> str:
    return f"{value:g}"


def make_dialogues(truth: ShopTruth, n: int, seed: int, min_items: int = 8) -> list[Dialogue]:
    """``n`` seeded dialogues over leaves with at least ``min_items`` in-stock items."""
    rng = random.Random(seed)
    leaves = sorted({str(c) for c in truth.category if c})
    out: list[Dialogue] = []
    attempts = 0
    while len(out) < n and attempts < 50 * max(n, 1):
        attempts += 1
        dialogue = _one(truth, rng, leaves, f"d{len(out):03d}", min_items)
        if dialogue is not None:
            out.append(dialogue)
    if len(out) < n:
        raise ValueError(f"the shop has too few stocked leaves for {n} dialogues ({len(out)})")
    return out


def _one(
    truth: ShopTruth, rng: random.Random, leaves: list[str], did: str, min_items: int
) -> Dialogue | None:
    user = rng.choice(truth.users)
    leaf = rng.choice(leaves)
    pool = truth.under(leaf) & truth.eligible(user)
    audience = None
    audiences = [a for a in RECIPIENTS if (pool & truth.has("audience", a)).sum() >= min_items]
    if audiences and rng.random() < 0.4:
        audience = rng.choice(audiences)
        pool &= truth.has("audience", audience)
    idx = np.flatnonzero(pool)
    if len(idx) < min_items:
        return None
    budget = say_budget(float(np.percentile(truth.price[idx], rng.uniform(40, 80))))
    within = idx[truth.price[idx] <= budget]
    if len(within) < 3:
        return None
    picked = _refine_value(truth, rng, within)
    if picked is None:
        return None
    key, value = picked
    plural, one = noun_forms(leaf)
    slots = {"plural": plural, "one": one, "budget": money(budget), "value": value.lower()}
    if audience:
        slots["who"] = rng.choice(RECIPIENTS[audience])
    find = rng.choice(FIND_FOR if audience else FIND).format(**slots)
    refine = rng.choice(REFINE.get(key, REFINE[""])).format(**slots)
    pair = rng.choice(list(COMPARE))
    compare = TurnPlan(
        "compare", rng.choice(COMPARE[pair]), list(pair), fallback=rng.choice(COMPARE[(0, 1)])
    )
    cheaper = TurnPlan("cheaper", rng.choice(CHEAPER))
    middle = rng.choice(
        [
            [TurnPlan("refine", refine), compare, cheaper],
            [TurnPlan("refine", refine), cheaper, compare],
            [compare, TurnPlan("refine", refine), cheaper],
        ]
    )
    extras: dict[str, Callable[[str], TurnPlan]] = {
        "recommend": lambda where: TurnPlan("recommend", rng.choice(RECOMMEND), placement=where),
        "guidance": lambda where: TurnPlan(
            "guidance", rng.choice(GUIDANCE).format(**slots), placement=where
        ),
    }
    opening = rng.choice(["recommend", "guidance", None])
    turns = [extras[opening]("opening")] if opening else []
    turns += [TurnPlan("find", find), *middle]
    rest = [name for name in extras if name != opening]
    rng.shuffle(rest)
    turns += [extras[name]("follow-up") for name in rest]
    return Dialogue(did, user, leaf, budget, audience, key, value, turns)


def _refine_value(
    truth: ShopTruth, rng: random.Random, within: np.ndarray
) -> tuple[str, str] | None:
    """A (key, value) that at least two in-budget items have and not all do; colour twice as
    likely as any other key."""
    options: list[tuple[str, str]] = []
    for key in REFINE_KEYS:
        if key not in truth.attributes.lower:
            continue
        values = [str(truth.attributes.shown[key][i]) for i in within]
        counts: dict[str, int] = {}
        for v in values:
            if v:
                counts[v] = counts.get(v, 0) + 1
        good = [v for v, c in counts.items() if c >= 2 and c < len(within)]
        if good:
            value = rng.choice(sorted(good))
            options += [(key, value)] * (2 if key == "colour" else 1)
    return rng.choice(options) if options else None


def positions_for(plan: TurnPlan, shown: Sequence[str]) -> tuple[str, list[int]] | None:
    """(message, positions) of a compare turn against the list shown last: the planned pair
    when the list is long enough, "the first two" otherwise, None below two items."""
    n = len(shown)
    if n < 2:
        return None
    if all(-n <= p < n for p in plan.positions) and len({p % n for p in plan.positions}) == len(
        plan.positions
    ):
        return plan.message, [p % n for p in plan.positions]
    return plan.fallback, [0, 1]
