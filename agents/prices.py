"""Prices in a shopper's own words: the one parser of budgets, shared by every agent module.

A number is read as a price only when something says so: a cue before it ("under", "around",
"between ... and", "my budget is"), a word after it ("80 max", "30+", "50 or so"), or a
currency ("$80", "50 bucks", "€20"). A bare number is a size, a quantity, a year or a list
position, so it is left alone, and so is one followed by a unit ("2 pack", "10 kg", "3 years").
Absurd amounts (more than twelve digits, infinity, negatives) are refused with a note rather than
turned into a bound: ``float("9" * 400)`` is ``inf``, and an infinite cap silently filters
nothing.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

MAX_DIGITS = 12
AROUND_BAND = 0.2  # "around 50" -> 40..60

# one character for one, so spans found on the normalised text index the original too
_SAME_LENGTH = str.maketrans(
    {
        "’": "'",
        "‘": "'",
        "ʼ": "'",
        "`": "'",
        "–": "-",
        "—": "-",
        "−": "-",
        "‒": "-",
        "\u00a0": " ",
        "“": '"',
        "”": '"',
    }
)


def normalize(text: str) -> str:
    """Lowercase, one spelling of quotes, dashes and spaces; idempotent."""
    text = unicodedata.normalize("NFKC", text).translate(_SAME_LENGTH).lower()
    return text.replace("us$", " $ ").replace("usd$", "  $ ")


_UNITS = "one|two|three|four|five|six|seven|eight|nine"
_TEENS = "ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen"
_TENS = "twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|fourty"
_WORD_VALUES = (
    {w: i + 1 for i, w in enumerate(_UNITS.split("|"))}
    | {w: i + 10 for i, w in enumerate(_TEENS.split("|"))}
    | {w: 20 + 10 * i for i, w in enumerate(_TENS.split("|")[:-1])}
    | {"fourty": 40}
)
_SMALL = rf"(?:{_TENS})(?:[\s-](?:{_UNITS}))?|{_TEENS}|{_UNITS}"
_CURRENCY_WORD = r"dollars?|bucks?|quid|pounds?|euros?|usd|eur|gbp|£|€|\$"
_AMOUNT = re.compile(
    rf"(?P<neg>(?<![\w-])(?<!\d\s)-\s?)?(?P<cur>[$£€¥₹]|\b(?:usd|eur|gbp)\b)?\s?(?:"
    r"(?P<num>(?<![\w.,])\d+(?:,\d{3})*(?:\.\d+)?(?:\s?(?:k|grand)\b)?"
    r"(?!\d|[.,]\d|(?!ish\b)[a-jl-z]))"
    r"|(?P<absurd>\b(?:inf(?:inity)?|nan)\b|∞|(?<![\w.])\d+(?:\.\d+)?e[+-]?\d+\b)"
    rf"|(?P<word>\b(?:(?:(?:a|one|{_UNITS})\s+)?hundred(?:\s+(?:and\s+)?(?:{_SMALL}))?"
    rf"|(?:a|one|{_UNITS})\s+grand|a\s+(?:tenner|fiver)|{_SMALL})\b))"
    rf"(?P<curword>\s?(?:{_CURRENCY_WORD})(?![a-z]))?"
)
_CUES: dict[str, re.Pattern[str]] = {  # each anchored at the end of the text before an amount
    "around": re.compile(
        r"(?:\b(?:budget|price|spend)\s+(?:is\s+|of\s+)?)?"
        r"(?:\b(?:around|about|approx(?:imately|\.)?|roughly|circa|ca\.|close to|near|"
        r"in the region of|ballpark(?: of)?|something like|somewhere around)|~)\s*$"
    ),
    "max": re.compile(
        r"(?:\b(?:under|below|beneath|less than|lower than|cheaper than|less expensive than|"
        r"up ?to|up till|max(?:imum)?(?: of| is)?|at (?:the )?most|no more than|not more than|"
        r"sub|top price|price cap|"
        r"nothing more than|no higher than|not higher than|nothing (?:over|above)|not (?:over|"
        r"above)|not exceeding|not to exceed|within|capped at|limit of|limit is|"
        r"(?:spend|spending|pay|afford)(?:\s+(?:up to|at most|max|no more than|less than|"
        r"under))?)|(?:n'?t|\bnot|\bnever)\s+(?:want to |wanna |like to |going to |"
        r"willing to |able to )?(?:spend|pay|go)\s+(?:more than|over|above|beyond)|<=?|≤)"
        r"[\s:-]*$"
    ),
    "min": re.compile(
        r"(?:\b(?:over|above|more than|greater than|higher than|pricier than|"
        r"more expensive than|at least|minimum(?: of)?|min|no less than|not less than|"
        r"starting (?:at|from))|>=?|≥)\s*$"
    ),
    "budget": re.compile(
        r"\b(?:budget|price range|price limit|spending limit|price cap)"
        r"(?:\s+(?:is|of|at|was|would be|will be|limit|max|maximum|cap|for (?:this|that|it)))*"
        r"\s*[:=]?\s*$"
    ),
    "from": re.compile(r"\b(?:from|starting)\s*$"),
}
_TRAILERS: dict[str, re.Pattern[str]] = {  # anchored at the start of the text after an amount
    "max": re.compile(
        r"\s*(?:max(?:imum)?|tops|top|at (?:the )?most|or (?:less|under|below|lower|cheaper)|"
        r"and (?:under|below|less)|to spend|limit|budget|all in|in total|total)\b"
    ),
    "min": re.compile(
        r"\s*(?:\+|(?:plus|or (?:more|above|over|higher|greater)|and (?:up|above|over|upwards?|"
        r"higher)|min(?:imum)?|at least|upwards?|or pricier)\b)"
    ),
    "around": re.compile(
        r"\s*(?:-?ish\b|(?:or so|give or take|roughly|approx(?:imately)?|or thereabouts?|"
        r"more or less|range|price range|mark|region)\b)"
    ),
}
# after a number these make it a quantity, a size or a measure, never a price
_UNIT_AFTER = re.compile(
    r"\s*(?:%|°|\"|(?:percent|x|kg|kgs|g|grams?|lbs?|oz|ml|cl|l|litres?|liters?|cm|mm|m|"
    r"metres?|meters?|inch(?:es)?|ft|feet|foot|w|watts?|v|volts?|mah|wh|gb|tb|mb|hz|mp|pack|"
    r"packs|pk|pcs|pc|pieces?|items?|pairs?|people|persons?|seater|seats?|players?|kids|"
    r"children|years?|yrs?|yo|months?|mos|weeks?|days?|hours?|hrs?|minutes?|mins?|seconds?|"
    r"secs?|stars?|reviews?|ratings?|colou?rs?|sizes?|bars?|cups?|capsules?|servings?|sheets?|"
    r"rolls?|tablets?|count|ct|of|times|results?|options?|products?|ones?|st|nd|rd|th)\b)"
)
# before a cue-less, currency-less number: a size, a position or a model number
_BLOCK_BEFORE = re.compile(
    r"\b(?:size|sizes|sz|eu|uk|us|age|ages|aged|item|items|number|numbers|no\.|option|options|"
    r"choice|choices|pick|picks|result|results|top|first|last|page|step|version|model|series|"
    r"gen|generation|spf|pack|set|x|compare|and|or|vs|versus|the|of|between)\s*$|#\s*$"
)
_RANGE_SEP = re.compile(r"\s*(?:-|to|till|until|and|&)\s*")
CHEAPER = re.compile(
    r"\b(?:cheaper|less expensive|less pricey|lower[- ]price[ds]?|lower[- ]cost|"
    r"more affordable|more budget[- ]friendly|too (?:expensive|pricey|much|dear|costly|steep)|"
    r"(?:over|above|out of) (?:my|the|our) (?:budget|price range)|bring (?:the )?price down|"
    r"not so expensive|cost(?:s|ing)? less|less money)\b"
)
PRICIER = re.compile(
    r"\b(?:pricier|more expensive|higher[- ]end|high[- ]end|premium|upmarket|fancier|"
    r"more luxurious|top[- ]of[- ]the[- ]range|better quality|higher quality|higher[- ]price[ds]?|"
    r"splurge|spend more)\b"
)
LOW_PRICE = re.compile(
    r"\b(?:(?:cheapest|lowest price) first|(?:sort|sorted|order|ordered) by price|"
    r"price,? low to high|low to high|cheap|cheapest|inexpensive|affordable|"
    r"budget[- ]friendly|low[- ]cost|bargains?|good value|value for money|on a budget|"
    r"lowest price)\b"
)
HIGH_PRICE = re.compile(
    r"\b(?:(?:most expensive|highest price|priciest) first|price,? high to low|high to low|"
    r"most expensive|luxury|top[- ]end|best quality|highest price)\b"
)
CLEAR = re.compile(
    r"\b(?:any price|any budget|no budget|no price limit|no limit|unlimited budget|"
    r"without (?:a )?budget|(?:forget|ignore|drop|remove|scrap|clear|lose|never ?mind) "
    r"(?:about )?(?:the |my |that )?(?:budget|price(?: limit| cap| range| filter)?)|"
    r"(?:price|budget|cost) (?:doesn'?t|does not|don'?t|won'?t) matter|"
    r"money (?:is|'s) no (?:object|issue)|price (?:is|'s) no (?:object|issue)|"
    r"regardless of (?:the )?(?:price|cost)|whatever (?:the )?(?:price|cost)|"
    r"don'?t care (?:about|what) (?:the )?(?:price|cost|budget|it costs))\b"
)


@dataclass(frozen=True)
class PriceBounds:
    price_min: float | None = None
    price_max: float | None = None
    spans: tuple[tuple[int, int], ...] = ()  # amounts and their cues, in normalised text
    word_spans: tuple[tuple[int, int], ...] = ()  # the words of `relative` and `order`
    notes: tuple[str, ...] = ()
    relative: Literal["cheaper", "pricier"] | None = None  # relative to what was shown
    order: Literal["low", "high"] | None = None  # "cheap headphones": no bound, a direction
    clear: bool = False  # "any price", "no budget"


@dataclass(frozen=True)
class _Amount:
    start: int
    end: int
    value: float | None  # None: refused (the note says why)
    currency: bool
    small_word: bool  # "one".."nineteen": a count far more often than a price
    note: str = ""


def _amount(m: re.Match[str]) -> _Amount:
    currency = bool(m.group("cur") or m.group("curword"))
    start, end = m.start(), m.end()
    raw = (m.group("num") or m.group("word") or m.group("absurd") or "").strip()
    if m.group("absurd"):
        return _Amount(start, end, None, currency, False, f"ignored {raw!r}: not a finite price")
    if m.group("word"):
        said, money = _spelled(raw)
        return _Amount(start, end, said, currency or money, said < 20)
    digits = raw.removesuffix("grand").rstrip("k ").replace(",", "")
    whole = digits.split(".")[0]
    if len(whole.lstrip("0")) > MAX_DIGITS:
        note = f"ignored a price of {len(whole)} digits: not a real price"
        return _Amount(start, end, None, currency, False, note)
    value = float(digits) * (1000 if raw.endswith(("k", "grand")) else 1)
    currency = currency or raw.endswith("grand")
    if m.group("neg"):
        return _Amount(start, end, None, currency, False, f"ignored -{raw}: a negative price")
    if not math.isfinite(value) or value > 10.0**MAX_DIGITS:
        return _Amount(start, end, None, currency, False, f"ignored {raw}: not a real price")
    return _Amount(start, end, value, currency, False)


def _spelled(raw: str) -> tuple[float, bool]:
    """The value of a spelled-out amount, and whether the words are money ("a tenner")."""
    toks = [t for t in raw.replace("-", " ").split() if t != "and"]
    if toks[-1] in {"tenner", "fiver"}:
        return (10.0 if toks[-1] == "tenner" else 5.0), True
    for scale, size in (("grand", 1000), ("hundred", 100)):
        if scale in toks:
            i = toks.index(scale)
            times = _WORD_VALUES.get(toks[i - 1], 1) if i else 1
            return float(times * size + sum(_WORD_VALUES[t] for t in toks[i + 1 :])), size > 100
    return float(sum(_WORD_VALUES[t] for t in toks)), False


def _cue(before: str) -> tuple[str | None, int]:
    """The longest cue ending right before an amount, and where it starts."""
    tail = before[-80:]
    offset = len(before) - len(tail)
    kind: str | None = None
    start = len(before)
    for name, pattern in _CUES.items():  # on a tie the earlier kind wins ("budget around")
        m = pattern.search(tail)
        if m and offset + m.start() < start:
            kind, start = name, offset + m.start()
    return kind, start


def _trailer(after: str) -> tuple[str | None, int]:
    for kind, pattern in _TRAILERS.items():
        m = pattern.match(after)
        if m:
            return kind, m.end()
    return None, 0


@dataclass
class _Found:
    lo: float | None = None
    hi: float | None = None
    spans: list[tuple[int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_price(text: str) -> PriceBounds:
    """The price bounds ``text`` states, and where it states them (spans of ``normalize(text)``)."""
    text = normalize(text)
    amounts = [_amount(m) for m in _AMOUNT.finditer(text) if m.group(0).strip()]
    found = _Found()
    i = 0
    while i < len(amounts):
        pair = amounts[i + 1] if i + 1 < len(amounts) else None
        if pair is not None and _range(text, amounts[i], pair, found):
            i += 2
        else:
            _single(text, amounts[i], found)
            i += 1
    lo, hi = found.lo, found.hi
    if lo is not None and hi is not None and lo > hi:
        found.notes.append(f"the minimum {lo:g} was above the maximum {hi:g}: swapped them")
        lo, hi = hi, lo
    clear = CLEAR.search(mask(text, found.spans))
    found.spans += [clear.span()] if clear else []
    masked = mask(text, found.spans)
    relative: Literal["cheaper", "pricier"] | None = None
    if m := CHEAPER.search(masked):
        relative = "cheaper"
    elif m := PRICIER.search(masked):
        relative = "pricier"
    words = [m.span()] if m else []
    order: Literal["low", "high"] | None = None
    if m := LOW_PRICE.search(masked):
        order = "low"
    elif m := HIGH_PRICE.search(masked):
        order = "high"
    words += [m.span()] if m and not any(s < m.end() and m.start() < e for s, e in words) else []
    return PriceBounds(
        price_min=lo,
        price_max=hi,
        spans=tuple(sorted(found.spans)),
        word_spans=tuple(sorted(words)),
        notes=tuple(found.notes),
        relative=relative,
        order=order,
        clear=bool(clear),
    )


def _range(text: str, a: _Amount, b: _Amount, found: _Found) -> bool:
    """Read "20-50", "between 20 and 50", "$20 to $50" into ``found``; False when the two
    amounts are no range ("items 1 and 3", "sizes 8-10", "3-5 years")."""
    if not _RANGE_SEP.fullmatch(text[a.end : b.start]):
        return False
    before, after = text[: a.start], text[b.end :]
    cue, cue_start = _cue(before)
    between = re.search(r"\b(?:between|from)\s*$", before)
    anded = text[a.end : b.start].strip() in {"and", "&"}
    ranged = re.match(r"\s*(?:price )?(?:range|bracket)\b", after)
    blocked = not (a.currency or b.currency or between or ranged) and _BLOCK_BEFORE.search(before)
    if (anded and not between) or blocked or _UNIT_AFTER.match(after):
        return False
    found.spans.append((between.start() if between else cue_start if cue else a.start, b.end))
    found.notes += [x.note for x in (a, b) if x.note]
    if a.value is None or b.value is None:
        return True
    if cue == "max" and not between:  # "under 20-30": the top of the range caps it
        found.hi = max(a.value, b.value)
    else:
        found.lo, found.hi = min(a.value, b.value), max(a.value, b.value)
    return True


def _single(text: str, a: _Amount, found: _Found) -> None:
    """Read one amount by the cue before it and the words after it, or leave it alone."""
    before, after = text[: a.start], text[a.end :]
    cue, cue_start = _cue(before)
    trailer, trail_end = _trailer(after)
    if _UNIT_AFTER.match(after) and not a.currency:
        return  # "2 pack", "10 kg", "3 years"
    kind = cue if cue not in (None, "budget", "from") else None
    if cue == "budget":
        kind = "around" if trailer == "around" else "max"
    elif cue == "from":
        kind = "min" if (a.currency or trailer == "min") else None  # "from 2019" is a year
    if kind is None and trailer is not None:
        kind = None if not a.currency and _BLOCK_BEFORE.search(before) else trailer
    if kind is None and a.currency:
        kind = "max"  # "$80", "fifty bucks": what they have to spend
    if kind is None or (a.small_word and not a.currency):
        return
    found.spans.append((cue_start if cue else a.start, a.end + trail_end))
    if a.value is None or a.value <= 0:
        found.notes.append(a.note or f"ignored a price of {a.value:g}: not a budget")
    elif kind == "max":
        found.hi = a.value
    elif kind == "min":
        found.lo = a.value
    else:
        found.lo = round(a.value * (1 - AROUND_BAND), 2)
        found.hi = round(a.value * (1 + AROUND_BAND), 2)


def mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with the spans blanked out: positions stay where they were."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def numbers_in(text: str) -> set[float]:
    """Every finite amount ``text`` writes ("1,000", "1k", "fifty dollars"): what a model may
    quote back as a price."""
    found = (_amount(m) for m in _AMOUNT.finditer(normalize(text)) if m.group(0).strip())
    return {a.value for a in found if a.value is not None}
