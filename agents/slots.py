"""What a turn asks for in the catalog's own terms: a category, a brand, attribute values,
exclusions, what to forget, and the words left over for search.

Works on the message after price words, references and intent cues are masked out, so what is
left is product language. Typos are fixed against the catalog's words first; then the longest
phrases are matched, a category is chosen among their readings, and every phrase not used by
the category is read as a brand or an attribute value ("no leather" and "not Outrun" as
exclusions). Values are checked against the category: "wool" for winter jackets is their
"wool blend", and a colour no item there has is kept but noted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents.cues import AGE, AGE_RANGE, CLEAR, FILLER, GENERIC_WANTS, SIZE, negated
from agents.lexicon import BOUNDARY, SIZE_ORDER, STOPWORDS, Token, tokenize, words
from agents.prices import mask
from agents.shopping_state import SessionState
from agents.vocabulary import CatalogVocabulary, Match

TRUTHY = frozenset({"yes", "true", "y", "1"})


@dataclass
class Slots:
    category: str | None = None
    options: list[str] = field(default_factory=list)  # what an ambiguous noun may mean
    by_meaning: bool = False  # the category came from the encoder, not from a name
    brand: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    exclude: dict[str, list[str]] = field(default_factory=dict)
    asks: list[str] = field(default_factory=list)  # attribute keys named without a value
    keywords: list[str] = field(default_factory=list)
    clears: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resized: bool = False  # "a size smaller", whether or not it could be resolved

    @property
    def specific(self) -> list[str]:
        """Keywords that say what to look for ("gift" says only that something is wanted)."""
        return [w for w in self.keywords if w not in GENERIC_WANTS]

    @property
    def constrained(self) -> bool:
        return bool(self.brand or self.attributes or self.exclude or self.resized)


def read_slots(
    text: str, original: str, vocab: CatalogVocabulary, state: SessionState | None, resize: int
) -> Slots:
    """The slots of ``text`` (normalised, price words, references and cues masked out);
    ``original`` lends case (brands that are also words); ``resize`` is -1 for "a size
    smaller", 1 for "bigger", else 0."""
    slots = Slots(resized=resize != 0)
    text = _constraint_phrases(text, vocab, state, resize, slots)
    toks = []
    for tok in tokenize(text, original):
        fix = None if tok.text in FILLER else vocab.correct(tok.text)
        if fix:
            slots.notes.append(f"read {tok.text!r} as {fix!r}")
        toks.append(Token(fix or tok.text, tok.start, tok.end, tok.raw))
    matches = vocab.match(toks)
    said = [t.text for t in toks]
    current = state.category if state else None
    context = {w for w in said if w not in STOPWORDS}
    slots.category, slots.options = vocab.resolve_category(
        [m.targets for m in matches], context, current
    )
    used = _read_matches(matches, toks, vocab, current, slots)
    slots.keywords = list(
        dict.fromkeys(
            w
            for i, w in enumerate(said)
            if i not in used
            and w not in BOUNDARY | STOPWORDS | FILLER
            and not w[0].isdigit()
            and len(w) > 1
        )
    )
    if slots.category is None and slots.options:
        slots.notes.append(f"{len(slots.options)} categories fit: {', '.join(slots.options[:5])}")
        slots.category = vocab.nearest_category(" ".join(said), slots.options)
        slots.by_meaning = slots.category is not None
    elif slots.category is None and slots.specific and vocab.similarity is not None:
        slots.category = vocab.nearest_category(" ".join(slots.specific))
        slots.by_meaning = slots.category is not None
    if slots.by_meaning:
        slots.notes.append(f"category {slots.category!r} by meaning, not by name")
    brand = state.brand if state else None
    new = slots.category and slots.category != current
    if new and brand and not slots.brand and not vocab.sells(brand, slots.category or ""):
        slots.clears.append("brand")
        slots.notes.append(f"{brand} has nothing under {slots.category}: dropped the brand")
    return slots


def _constraint_phrases(
    text: str, vocab: CatalogVocabulary, state: SessionState | None, resize: int, slots: Slots
) -> str:
    """Read "any colour" / "forget the brand", "size 42" and "a size smaller"; returns
    ``text`` without them."""
    spans = []
    for said in CLEAR.finditer(text):
        target = _clear_target(said.group(1) or said.group(2) or "", vocab)
        if target:
            slots.clears.append(target)
            spans.append(said.span())
    for said in AGE.finditer(text):
        months = said.group(3) is not None
        years = int(next(g for g in (said.group(1), said.group(4), said.group(5)) if g))
        picked = _age_value(vocab, 0 if months else years)
        if picked:
            slots.attributes[picked[0]] = [picked[1]]
            spans.append(said.span())
    key = vocab.size_key
    for said in SIZE.finditer(text) if key else ():
        value = size_value(vocab, said.group(1))
        if value and key:
            slots.attributes[key] = [value]
            spans.append(said.span())
        elif said.group(1)[0].isdigit() or said.group(1) in {"xxs", "xs", "s", "m", "l", "xl"}:
            slots.notes.append(f"size {said.group(1)!r}: the catalog has no such size")
            spans.append(said.span())
    if resize:
        chosen = state.attributes.get(key or "", []) if state else []
        where = state.category if state else None
        step = next_size(vocab, chosen[0], resize, where) if len(chosen) == 1 else None
        if step and key:
            slots.attributes[key] = [step]
        else:
            slots.notes.append("a size change needs one size chosen before, with a next size")
    return mask(text, spans)


def _read_matches(
    matches: list[Match],
    toks: list[Token],
    vocab: CatalogVocabulary,
    current: str | None,
    slots: Slots,
) -> set[int]:
    """Brands, values and keys from the phrases the category did not use; returns the token
    positions read."""
    used: set[int] = set()
    said = [t.text for t in toks]
    for m in matches:
        if slots.category and _supports(m, slots.category):
            used.update(range(m.start, m.end))
            continue
        readings = [t for t in m.targets if t.kind != "category"]
        if not readings:
            continue  # an ambiguous category noun: it stays a keyword
        used.update(range(m.start, m.end))
        negative = negated(said, m.start)
        brands = [t for t in readings if t.kind == "brand"]
        values = [t for t in readings if t.kind == "value"]
        if brands and (not values or toks[m.start].raw[:1].isupper()):
            if negative:
                slots.exclude.setdefault("brand", []).append(brands[0].value)
            else:
                slots.brand = brands[0].value
        elif values:
            where = slots.category or current
            t = vocab.resolve_value(values, where, said)
            value = vocab.value_in(t.key, t.value, where)
            into = slots.exclude if negative else slots.attributes
            if value not in into.setdefault(t.key, []):
                into[t.key].append(value)
            if where and not negative and not vocab.has_value(t.key, value, where):
                slots.notes.append(f"nothing under {where} has {t.key} {value!r}")
        else:
            for key in (t.value for t in readings if t.kind == "key"):
                yes = [v for v in vocab.values.get(key, []) if v.lower() in TRUTHY]
                if yes:  # "noise cancelling headphones": a yes/no attribute, said
                    (slots.exclude if negative else slots.attributes)[key] = yes[:1]
                else:
                    slots.asks.append(key)
    slots.asks = [k for k in dict.fromkeys(slots.asks) if k not in slots.attributes]
    return used


def _age_value(vocab: CatalogVocabulary, age: int) -> tuple[str, str] | None:
    """The catalog's (key, value) for a child's age: the age range that holds it ("3-5
    years"), else the audience a shopper of that age is (baby, kids)."""
    for key, values in vocab.values.items():
        for value in values:
            m = AGE_RANGE.search(value.lower())
            if m and int(m.group(1)) <= age <= int(m.group(2) or 200):
                return key, value
    if age >= 13:
        return None
    for word in ("baby", "kids") if age < 2 else ("kids",):
        for t in vocab.phrases.get((word,), ()):
            if t.kind == "value" and t.key in vocab.audience_keys:
                return t.key, t.value
    return None


def _supports(m: Match, category: str) -> bool:
    """Did this phrase name the chosen category (or one under or above it)?"""
    return any(
        t.kind == "category"
        and (
            t.value == category
            or t.value.startswith(category + " > ")
            or category.startswith(t.value + " > ")
        )
        for t in m.targets
    )


def _clear_target(said: str, vocab: CatalogVocabulary) -> str | None:
    """What "any X" / "forget the X" / "X doesn't matter" clears, if X names a constraint."""
    toks = words(said)
    head = toks[0] if toks else ""
    if head in {"brand", "brands", "make"}:
        return "brand"
    if head in {"filter", "filters", "constraints", "preferences", "restrictions"}:
        return "filters"
    if head in {"category", "categories"}:
        return "category"
    for n in (2, 1):
        keys = [t.value for t in vocab.phrases.get(tuple(toks[:n]), ()) if t.kind == "key"]
        if toks and keys:
            return keys[0]
    return None


def size_value(vocab: CatalogVocabulary, said: str) -> str | None:
    """The catalog's size for what a shopper wrote after "size": "m", "xl", "42", "large"."""
    if vocab.size_key is None:
        return None
    said = said.strip().lower()
    sizes = vocab.values[vocab.size_key]
    exact = [v for v in sizes if v.lower() == said]
    tail = [v for v in sizes if v.lower().split()[-1:] == [said]]  # "42" is "EU 42"
    named = [t.value for t in vocab.phrases.get(tuple(words(said)), ()) if t.key == vocab.size_key]
    return next((found[0] for found in (exact, tail, named) if len(found) == 1), None)


def next_size(
    vocab: CatalogVocabulary, value: str, step: int, category: str | None = None
) -> str | None:
    """The size ``step`` places bigger (negative: smaller) in the same sizing as ``value``
    ("M" -> "L", "EU 42" -> "EU 43"), among the sizes ``category`` has."""
    key = vocab.size_key
    if key is None:
        return None

    def rank(v: str) -> tuple[str, float] | None:
        digits = re.findall(r"\d+(?:\.\d+)?", v)
        if digits:  # "EU 42" and "size 3" are two sizings: never step from one to the other
            return re.sub(r"\d+(?:\.\d+)?", "#", v.lower()), float(digits[-1])
        low = v.lower()
        return ("letters", float(SIZE_ORDER.index(low))) if low in SIZE_ORDER else None

    ranked = {
        v: r
        for v in vocab.values[key]
        if (r := rank(v)) is not None
        and (not category or v == value or vocab.has_value(key, v, category))
    }
    if value not in ranked:
        return None
    family = sorted((v for v in ranked if ranked[v][0] == ranked[value][0]), key=ranked.__getitem__)
    i = family.index(value) + step
    return family[i] if 0 <= i < len(family) else None
