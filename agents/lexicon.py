"""Words, as the agent's parsers compare them: tokens, one spelling, singular and plural, typos.

Shared by the catalog vocabulary and the turn parser, so that both sides of every match are
read the same way: "Men's", "mens" and "men" are one token, "gray" is "grey", "Lumière" is
"lumiere", and "&" is "and".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


def wordset(text: str) -> frozenset[str]:
    """A lexicon written as running text: one word per space."""
    return frozenset(text.split())


STOPWORDS = wordset(
    "a an the and or but if then so to of in on at by for with without from into onto about "
    "as is are was were be been being am do does did doing done have has had having will "
    "would shall should can could may might must i me my mine myself we us our ours you "
    "your yours he him his she her hers it its they them their this that these those there "
    "here what which who whom whose when where why how all any both each few more most "
    "other some such no nor not only own same than too very just also again once up down "
    "out off over under s t don't i'm i'd i'll i've it's that's what's let's can't won't "
    "isn't aren't doesn't didn't"
)
# one spelling for both sides of a match: the catalog's and the shopper's
SPELLING = {"gray": "grey", "greys": "grey", "grays": "grey", "color": "colour",
            "colors": "colours", "colored": "coloured", "aluminum": "aluminium",
            "jewelry": "jewellery", "pajamas": "pyjamas", "moisturizer": "moisturiser",
            "moisturizers": "moisturisers", "favorite": "favourite", "fiber": "fibre",
            "cozy": "cosy", "multicolor": "multicolour", "&": "and", "/": "or", "mom": "mum",
            "womens": "women", "mens": "men", "childrens": "children"}  # fmt: skip
# singular and plural are one word for these; "short" is not a pair of shorts
PLURALIA = wordset(
    "jeans shorts trousers pants leggings glasses sunglasses scissors pliers tongs "
    "binoculars tights pyjamas goggles news"
)
GENERIC = wordset(
    "classic regular standard original medium dark light large small extra super ultra pro "
    "plus mini max fit blend free piece pack true style type natural new size grade edition "
    "basic premium"
)
# (catalog values, first found wins) <- what shoppers call them; only values the catalog has
SYNONYMS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("men", "male", "mens"), ("men", "man", "mens", "male", "males", "gents", "gent", "guys",
                               "guy", "him", "his", "for him", "husband", "boyfriend", "dad",
                               "father", "brother", "grandad", "grandpa", "uncle")),
    (("women", "female", "womens"), ("women", "woman", "womens", "ladies", "lady", "female",
                                     "females", "her", "hers", "for her", "wife", "girlfriend",
                                     "mum", "mother", "sister", "grandma", "gran", "aunt")),
    (("kids", "children", "child", "youth"), ("kids", "kid", "children", "child", "toddler",
                                              "toddlers", "little ones")),
    (("boys", "kids", "children"), ("boy", "boys", "son", "nephew")),
    (("girls", "kids", "children"), ("girl", "girls", "daughter", "niece")),
    (("baby", "babies", "infant"), ("baby", "babies", "infant", "infants", "newborn")),
    (("unisex",), ("unisex", "everyone", "gender neutral")),
    (("navy", "blue"), ("navy blue",)),
    (("s", "small"), ("small",)), (("m", "medium"), ("medium",)), (("l", "large"), ("large",)),
    (("xl",), ("extra large", "x large", "xlarge")), (("xs",), ("extra small", "x small")),
    (("xxl",), ("xx large", "2xl", "xxlarge")),
)  # fmt: skip
KEY_SYNONYMS = {
    "colour": ("colour", "colours", "shade"),
    "size": ("size", "sizes"),
    "material": ("material", "materials", "fabric", "made of", "made from"),
}
# words of conversation a brand may share: "Next" the brand only when written so
COMMON_WORDS = wordset(
    "next new only just more less look guess boss gap select simple basic pure true fresh "
    "smart best good great nice better free easy happy today target sure well still real vital "
    "active natural original classic modern urban top first last other same"
)
AUDIENCE_VALUES = wordset("men women kids boys girls baby unisex children adults male female youth")
SIZE_ORDER = ("xxs", "xs", "s", "m", "l", "xl", "xxl", "xxxl", "3xl", "4xl")

TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:'[^\W\d_]+)*|[,.;:!?()&/]")
BOUNDARY = frozenset(",.;:!?()")


@dataclass(frozen=True)
class Token:
    text: str  # canonical: what matching compares
    start: int  # span in the normalised message
    end: int
    raw: str  # as typed, for case: the brand "Only" is not the word "only"


def canonical(word: str) -> str:
    word = word[:-2] if word.endswith("'s") else word
    if not word.isascii():  # "Lumière" is typed "lumiere"
        word = "".join(
            c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c)
        )
    return SPELLING.get(word, word)


def tokenize(text: str, original: str = "") -> list[Token]:
    """Tokens of normalised ``text``; ``original`` (same length) lends its case to ``raw``."""
    same = len(original) == len(text)
    return [
        Token(
            canonical(m.group(0)),
            m.start(),
            m.end(),
            original[m.start() : m.end()] if same else m.group(0),
        )
        for m in TOKEN.finditer(text)
    ]


def words(name: str) -> list[str]:
    return [t.text for t in tokenize(name.lower()) if t.text not in BOUNDARY]


def singulars(word: str) -> set[str]:
    if len(word) <= 3 or word in PLURALIA or not word.endswith("s") or word.endswith("ss"):
        return set()
    out = {word[:-1]}
    if word.endswith("es"):
        out.add(word[:-2])
    if word.endswith("ies"):
        out.add(word[:-3] + "y")
    if word.endswith("ves"):
        out |= {word[:-3] + "f", word[:-3] + "fe"}
    return out


def plurals(word: str) -> set[str]:
    if len(word) <= 2 or word in PLURALIA or not word.isalpha():
        return set()
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return {word + "es"}
    if word.endswith("y") and word[-2:-1] not in set("aeiou"):
        return {word[:-1] + "ies"}
    if word.endswith(("f", "fe")):
        return {word + "s", word.rstrip("e")[:-1] + "ves"}
    return {word + "s"}


IRREGULAR = {"mice": "mouse", "feet": "foot", "teeth": "tooth", "geese": "goose",
             "people": "person", "children": "child", "dice": "die"}  # fmt: skip
IRREGULAR |= {one: many for many, one in IRREGULAR.items()}


def forms(word: str) -> set[str]:
    """The word, its singulars and plurals: "knives" -> "knife", "mouse" -> "mice"."""
    irregular = {IRREGULAR[word]} if word in IRREGULAR else set()
    return {word} | singulars(word) | plurals(word) | irregular


def osa(a: str, b: str, limit: int) -> int:
    """Edit distance counting a swap of neighbours as one edit; anything over ``limit`` is
    ``limit + 1`` (the typo test needs no more)."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]
