"""A fast understanding step before any LLM: one chat turn, read against the catalog.

:func:`parse_turn` turns a shopper's message into an :class:`Understanding`: an intent, catalog
slots (category, brand, attribute values, price bounds), references to the list shown last
("the first two", "#2", "it"), the leftover content words for search, a confidence and notes on
what was ignored and why. It is rules and lookups only (no model), microseconds to a millisecond
a turn, so a router can run confidently parsed turns straight through the tools and leave only
the rest to the LLM. :func:`agents.shopping_state.update` folds each turn into the session's
:class:`SessionState`.

The order matters: price words go first (so "the first two" is never a budget and "under 50"
never a list position), then references, then the cue phrases of each intent; what remains is
matched against the catalog vocabulary, and what matches nothing becomes keywords.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from agents.cues import (
    ADDITIVE,
    ASK_BRAND,
    ASK_PRICE,
    BUY,
    COMPARE,
    FOR_ME,
    GREETING_WORDS,
    GUIDANCE,
    IN_STOCK,
    LARGER,
    MORE_LIKE,
    MORE_RESULTS,
    QUESTION,
    RECOMMEND,
    REFINE_LEAD,
    RESET,
    SMALLER,
    Refs,
    references,
)
from agents.lexicon import STOPWORDS, words
from agents.prices import PriceBounds, mask, normalize, parse_price
from agents.shopping_state import SessionState, update
from agents.slots import Slots, read_slots
from agents.vocabulary import CatalogVocabulary

__all__ = ["CatalogVocabulary", "SessionState", "Understanding", "parse_turn", "update"]

Intent = Literal[
    "find",
    "refine",
    "compare",
    "recommend",
    "guidance",
    "item_question",
    "cheaper",
    "pricier",
    "more_like",
    "clarify",
    "greeting",
    "unknown",
]
MAX_CHARS = 1000  # a longer message is cut: nobody types a 5,000-character shopping request


@dataclass(frozen=True)
class Understanding:
    intent: Intent
    category: str | None = None  # a catalog category path
    brand: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)  # catalog key -> values
    price_min: float | None = None
    price_max: float | None = None
    references: list[int] = field(default_factory=list)  # 0-based in the list shown last
    keywords: list[str] = field(default_factory=list)
    confidence: float = 0.0
    notes: list[str] = field(default_factory=list)
    exclude: dict[str, list[str]] = field(default_factory=dict)  # "no leather"; "brand": "not X"
    clears: list[str] = field(default_factory=list)  # all, filters, price, brand, category, a key
    additive: bool = False  # "or black", "also in red": add to the values, don't replace them
    asks: list[str] = field(default_factory=list)  # attribute keys a question asks about
    sort: Literal["price_asc", "price_desc"] | None = None  # "cheap ...", "the most expensive"
    category_options: list[str] = field(default_factory=list)  # when the noun is ambiguous
    category_keys: list[str] | None = None  # attribute keys that still apply under `category`
    in_stock: bool = False  # "in stock only", "available now"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_turn(
    message: str, vocab: CatalogVocabulary, state: SessionState | None = None
) -> Understanding:
    """One chat turn read against the catalog; ``state`` (the session so far) resolves
    references and relative requests. Never raises on any text."""
    notes: list[str] = []
    if len(message) > MAX_CHARS:
        notes.append(f"read only the first {MAX_CHARS} characters")
        message = message[:MAX_CHARS]
    text = normalize(message)
    original = message if len(message) == len(text) else ""
    price = parse_price(text)
    by_name = bool(COMPARE.search(text) or QUESTION.search(text))
    refs = references(mask(text, price.spans), state, vocab, by_name, price.word_spans)
    # "the cheapest one" picks from the list: its price word is no direction
    picked = any(a < e and s < b for s, e in price.word_spans for a, b in refs.spans)
    relative = None if picked else price.relative
    order = None if picked else price.order
    priced = mask(text, [*price.spans, *price.word_spans])
    cues = {name: rx.search(priced) for name, rx in CUES.items()}
    rest = mask(priced, refs.spans)
    additive = bool(ADDITIVE.search(rest))
    rest = mask(rest, [m.span() for m in cues.values() if m])
    resize = -1 if cues["smaller"] else 1 if cues["larger"] else 0
    slots = read_slots(rest, original, vocab, state, resize)
    clears = ["all"] * bool(cues["reset"]) + ["price"] * price.clear + slots.clears
    notes += [*price.notes, *refs.notes, *slots.notes]
    asked = ["price"] * bool(ASK_PRICE.search(priced)) + ["brand"] * bool(ASK_BRAND.search(text))
    asked += ["buy"] * bool(BUY.search(text))  # no orders here: the router says so
    slots.asks += [a for a in asked if a not in slots.asks]
    shown = list(state.last_list) if state else []
    intent = _intent(text, rest, cues, refs, (relative, order), state, slots, price, clears)
    focus = state.focus if state and state.focus in shown else None
    positions = _positions(intent, refs, shown, focus)
    if relative and (intent not in {"cheaper", "pricier"} or not shown):
        order = "low" if relative == "cheaper" else "high"  # "similar but cheaper", a new search
    if intent in {"cheaper", "pricier"} and not shown:
        notes.append(f"nothing shown yet to be {intent} than: sorting by price instead")
        intent = "find" if slots.category or slots.specific else "refine"
    stock = bool(cues["in_stock"])
    if stock and intent == "item_question":
        slots.asks.append("in_stock")  # "is it in stock?" asks, it does not filter
    if cues["more"] and intent == "refine":
        notes.append("more of the same search")
    if intent in {"compare", "item_question", "more_like"} and not shown and positions:
        notes.append("nothing shown yet: the references point at no list")
    bounded = price.price_min is not None or price.price_max is not None
    grounded = bool(
        slots.category or slots.constrained or positions or clears or bounded or stock
    ) or bool((price.order and not picked) or (cues["more"] and intent == "refine"))
    known = [w for w in slots.specific if w in vocab.known]
    return Understanding(
        intent=intent,
        category=slots.category,
        brand=slots.brand,
        attributes=slots.attributes,
        price_min=price.price_min,
        price_max=price.price_max,
        references=positions,
        keywords=[] if intent == "greeting" else slots.keywords,
        confidence=_confidence(intent, grounded, bool(shown), known, slots, notes),
        notes=notes,
        exclude=slots.exclude,
        clears=list(dict.fromkeys(clears)),
        additive=additive,
        asks=slots.asks,
        sort="price_asc" if order == "low" else "price_desc" if order == "high" else None,
        category_options=slots.options,
        category_keys=_kept_keys(slots.category, vocab, state),
        in_stock=stock and intent != "item_question",
    )


def _positions(intent: Intent, refs: Refs, shown: list[str], focus: str | None) -> list[int]:
    """The shown items the turn is about, now that its intent is known."""
    if intent in {"find", "recommend", "guidance", "clarify"} or (
        refs.pronoun and intent == "refine"
    ):
        return []  # "make it wool", "top 5 board games": a search, pointing at no item
    if intent in {"cheaper", "pricier"} and (
        refs.pronoun == "many" or (refs.pronoun and focus is None)
    ):
        return []  # "these are too expensive", "that's too dear": relative to the list
    if intent in {"more_like", "item_question"} and not refs.positions and shown:
        return [shown.index(focus) if focus is not None else 0]  # "anything similar?"
    return refs.positions


CUES = {
    "reset": RESET,
    "guidance": GUIDANCE,
    "compare": COMPARE,
    "more_like": MORE_LIKE,
    "recommend": RECOMMEND,
    "more": MORE_RESULTS,
    "in_stock": IN_STOCK,
    "smaller": SMALLER,
    "larger": LARGER,
}


def _kept_keys(
    category: str | None, vocab: CatalogVocabulary, state: SessionState | None
) -> list[str] | None:
    """The attribute keys that still apply under ``category``: those its items have, with the
    values asked for so far, and the audience (it describes the shopper, not the product)."""
    if not category:
        return None
    held = {**(state.attributes if state else {}), **(state.exclude if state else {})}
    return sorted(
        vocab.audience_keys
        | {
            k
            for k in vocab.keys_for(category)
            if k not in held or any(vocab.has_value(k, v, category) for v in held[k])
        }
    )


def _intent(
    text: str,
    rest: str,
    cues: dict[str, re.Match[str] | None],
    refs: Refs,
    direction: tuple[str | None, str | None],
    state: SessionState | None,
    slots: Slots,
    price: PriceBounds,
    clears: list[str],
) -> Intent:
    """The first rule that fits, the most specific first: an explicit cue beats a slot."""
    content = [w for w in words(text) if w not in STOPWORDS]
    shown = bool(state and state.last_list)
    explicit = bool(refs.positions) and refs.pronoun is None
    pointed = explicit or (refs.pronoun is not None and shown)
    category, specific = slots.category, slots.specific
    bounded = price.price_min is not None or price.price_max is not None
    relative, order = direction  # "cheaper", "pricier"; "low", "high"
    constrained = slots.constrained or bounded or bool(cues["in_stock"] or order)
    active = bool(state and (state.category or state.keywords or state.last_list))
    refining = bool(REFINE_LEAD.search(rest))
    if not content and not refs.positions:
        return "unknown"
    if content and set(content) <= GREETING_WORDS:
        return "greeting"
    valued = sum(len(v) for v in slots.attributes.values()) >= 2
    if cues["guidance"] or (cues["compare"] and not explicit and valued):
        return "guidance"  # "the difference between merino and alpaca": about the materials
    if cues["compare"]:
        return "compare" if pointed or shown else "guidance"
    if cues["more_like"] and (pointed or shown):
        return "more_like"
    if cues["more"] and active and not (category or specific or constrained):
        return "refine"  # "show me more": the same search, further down
    new_search = category is not None and (not state or category != state.category)
    if relative in {"cheaper", "pricier"} and not new_search:
        return "cheaper" if relative == "cheaper" else "pricier"
    if pointed and (QUESTION.search(text) or "buy" in slots.asks):
        return "item_question"
    if cues["recommend"] or (FOR_ME.search(rest) and not (category or specific)):
        return "recommend"
    if "all" in clears and not (category or specific or constrained):
        return "clarify"  # "start over": what are they looking for now?
    if explicit and not category and not constrained:
        return "item_question"  # "I'll take the second one"
    if new_search or (category and not refining):
        return "find"
    if not category and not specific and slots.keywords:
        return "recommend" if constrained else "clarify"  # "a gift for my dad under 50"
    if (constrained or clears or category) and active and (not specific or refining):
        return "refine"
    if specific:
        return "refine" if active and refining else "find"
    if constrained or clears:
        return "find"
    if pointed or (slots.asks and shown):
        return "item_question"  # "what colours does it come in", "what sizes are there"
    return "clarify"


BASE = {
    "greeting": 0.95,
    "guidance": 0.8,
    "compare": 0.85,
    "item_question": 0.8,
    "more_like": 0.85,
    "cheaper": 0.85,
    "pricier": 0.85,
    "recommend": 0.8,
    "find": 0.85,
    "refine": 0.85,
    "clarify": 0.3,
    "unknown": 0.1,
}
DOUBTS = ("ignored", "no item", "size", "a size")  # notes that mean part of the turn was lost


def _confidence(
    intent: Intent, grounded: bool, shown: bool, known: list[str], slots: Slots, notes: list[str]
) -> float:
    """High when the intent is clear and at least one slot is grounded in the catalog."""
    score = BASE[intent]
    if intent in {"find", "refine"} and not grounded:
        score = 0.5 if known else 0.3  # words the catalog uses, or not even those
    if intent in {"compare", "item_question", "more_like", "cheaper", "pricier"} and not shown:
        score = 0.35
    score -= 0.15 * bool(slots.options) + 0.15 * slots.by_meaning
    score -= 0.05 * min(2, sum(n.startswith("read ") for n in notes))
    score -= 0.1 * any(n.startswith(DOUBTS) for n in notes)
    return round(min(1.0, max(0.0, score)), 2)
