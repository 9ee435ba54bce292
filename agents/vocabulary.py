"""The catalog's own words: categories, brands, attribute keys and values, as phrases to match.

Built once per bundle from whatever columns the catalog has (a catalog may lack attributes,
brands or categories: those parts of the vocabulary are simply empty). Matching works on
canonical tokens (lowercase, possessives dropped, one spelling of grey/gray and colour/color), so
"Men's", "mens" and "men" meet, and "T-Shirts" matches "t shirt" and "tshirt".

A phrase can name several things; each reading is a :class:`Target` with a tier, lower is
stronger: a category's full name beats a part of an "A & B" name, which beats a leaf's head noun
("jacket" -> five jacket leaves). :meth:`CatalogVocabulary.resolve_category` then picks one
category or admits the phrase is ambiguous.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from agents.lexicon import (
    AUDIENCE_VALUES,
    COMMON_WORDS,
    GENERIC,
    KEY_SYNONYMS,
    STOPWORDS,
    SYNONYMS,
    TOKEN,
    Token,
    canonical,
    forms,
    osa,
    singulars,
    words,
)
from agents.port import Similarity
from recsys.catalog import Catalog


@dataclass(frozen=True)
class Target:
    kind: Literal["category", "brand", "value", "key"]
    value: str  # category path, brand, attribute value or key, as the catalog writes it
    key: str = ""  # the attribute key of a value
    tier: int = 0
    cased: bool = False  # a brand that is also a plain word: only when written capitalised


@dataclass(frozen=True)
class Match:
    start: int  # token positions
    end: int
    targets: tuple[Target, ...]


@dataclass
class CatalogVocabulary:
    catalog: Catalog
    phrases: dict[tuple[str, ...], tuple[Target, ...]]
    known: frozenset[str]  # every word of the index and the titles: not a typo
    leaves: list[str] = field(default_factory=list)
    brands: list[str] = field(default_factory=list)
    values: dict[str, list[str]] = field(default_factory=dict)  # key -> values, most common first
    value_leaves: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    leaf_keys: dict[str, frozenset[str]] = field(default_factory=dict)
    brand_leaves: dict[str, frozenset[str]] = field(default_factory=dict)
    audience_keys: frozenset[str] = frozenset()
    size_key: str | None = None
    similarity: Similarity | None = None
    min_similarity: float = 0.5
    item_values: list[dict[str, list[str]]] = field(default_factory=list)  # per item row
    _index_words: dict[str, list[str]] = field(default_factory=dict)  # first letter -> words
    _fixes: dict[str, str | None] = field(default_factory=dict)
    max_len: int = 1

    @classmethod
    def build(
        cls, catalog: Catalog, similarity: Similarity | None = None, min_similarity: float = 0.5
    ) -> CatalogVocabulary:
        """The vocabulary of ``catalog``, once per bundle (about 0.2 s for 20,000 items).

        ``similarity`` (the bundle's sentence encoder, optional) maps words with no lexical
        match to the nearest leaf category when it scores at least ``min_similarity``.
        """
        index: dict[tuple[str, ...], set[Target]] = defaultdict(set)

        def add(name: str, target: Target, inflect: bool = True) -> None:
            toks = words(name)
            if not toks:
                return
            variants = [[*toks[:-1], w] for w in (forms(toks[-1]) if inflect else {toks[-1]})]
            if "-" in name and len(toks) > 1:  # "T-Shirts" is also typed "tshirts"
                variants += [["".join(v)] for v in list(variants)]
            for v in variants:
                index[tuple(v)].add(target)

        leaves = sorted({c for c in catalog.category if c}) if catalog.category is not None else []
        nodes = {" > ".join(p.split(" > ")[:d]) for p in leaves for d in range(1, p.count(">") + 2)}
        for node in sorted(nodes):
            name = node.split(" > ")[-1]
            leaf = node in leaves
            add(name, Target("category", node, tier=0 if leaf else 1))
            parts = [p for p in re.split(r"\s*(?:&|,|\band\b)\s*", name) if p]
            for part in parts if len(parts) > 1 else []:
                add(part, Target("category", node, tier=2))
            head = words(name)
            if leaf and len(head) > 1 and head[-1] not in STOPWORDS:
                add(head[-1], Target("category", node, tier=3))

        titles = catalog.title if catalog.title is not None else np.array([], dtype=object)
        title_words: Counter[str] = Counter()
        for word, n in Counter(TOKEN.findall(" ".join(map(str, titles)).lower())).items():
            title_words[canonical(word)] += n
        brands = sorted({b for b in catalog.brand if b}) if catalog.brand is not None else []
        brand_items = Counter(catalog.brand) if catalog.brand is not None else Counter()
        for brand in brands:
            toks = words(brand)
            common = len(toks) == 1 and (
                toks[0] in STOPWORDS | COMMON_WORDS
                or title_words[toks[0]] > 2 * brand_items[brand] + 5
            )
            add(brand, Target("brand", brand, cased=common), inflect=False)

        item_values, counts, value_leaves, leaf_keys = _attributes(catalog)
        brand_leaves: dict[str, set[str]] = defaultdict(set)
        if catalog.brand is not None and catalog.category is not None:
            for brand, leaf in set(zip(catalog.brand, catalog.category, strict=True)):
                brand_leaves[brand].add(leaf)
        values = {k: [v for v, _ in c.most_common()] for k, c in counts.items()}
        partial: dict[str, set[tuple[str, str]]] = defaultdict(set)
        lowered: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for key, vals in values.items():
            for name in (key.replace("_", " "), *KEY_SYNONYMS.get(key, ())):
                add(name, Target("key", key))
            for value in vals:
                lowered[value.lower()].append((key, value))
                toks = words(value)
                short = len(toks) == 1 and toks[0].isalpha() and len(toks[0]) <= 2
                if not toks or (short and (len(toks[0]) == 1 or toks[0] in STOPWORDS)):
                    continue  # "S", "M": only "size m" or "medium" say those
                if not (len(toks) == 1 and toks[0].replace(".", "").isdigit()):
                    # "1000 pieces" is also "1000 piece"; "glass" is not "glasses"
                    add(value, Target("value", value, key), inflect=toks[0][0].isdigit())
                for tok in toks if len(toks) > 1 else []:
                    if tok.isalpha() and len(tok) >= 4 and tok not in STOPWORDS | GENERIC:
                        partial[tok].add((key, value))
        for tok, owners in partial.items():
            if len(owners) == 1 and (tok,) not in index:
                key, value = next(iter(owners))
                index[(tok,)].add(Target("value", value, key, tier=2))
        # a typo is corrected towards the catalog's own words, never towards a synonym from
        # the lexicon: "grand" is not "gran"
        fixable = {w for p in index for w in p} | set(title_words)
        for candidates, synonyms in SYNONYMS:
            found = next((lowered[c] for c in candidates if c in lowered), [])
            for (key, value), synonym in ((kv, s) for kv in found for s in synonyms):
                add(synonym, Target("value", value, key, tier=1), inflect=False)

        phrases = {k: tuple(sorted(v, key=lambda t: t.tier)) for k, v in index.items()}
        known = frozenset({w for p in phrases for w in p} | set(title_words))
        by_letter: dict[str, list[str]] = defaultdict(list)
        for w in sorted(fixable):
            if w.isalpha() and len(w) >= 4:
                by_letter[w[0]].append(w)
        audience = frozenset(
            k for k, v in values.items() if AUDIENCE_VALUES & {x.lower() for x in v}
        )
        sizes = [k for k in values if "size" in k.lower() and "pack" not in k.lower()]
        return cls(
            catalog=catalog,
            phrases=phrases,
            known=known,
            leaves=leaves,
            brands=brands,
            values=values,
            value_leaves=value_leaves,
            leaf_keys=leaf_keys,
            brand_leaves={b: frozenset(p) for b, p in brand_leaves.items()},
            audience_keys=audience,
            size_key=min(sizes, key=len) if sizes else None,
            similarity=similarity,
            min_similarity=min_similarity,
            item_values=item_values,
            _index_words=dict(by_letter),
            max_len=max((len(p) for p in phrases), default=1),
        )

    # --- matching -------------------------------------------------------------------------

    def match(self, toks: Sequence[Token]) -> list[Match]:
        """Non-overlapping phrase matches, the longest first, in message order."""
        found: list[tuple[int, int, tuple[Target, ...]]] = []
        text = [t.text for t in toks]
        for i in range(len(text)):
            for n in range(min(self.max_len, len(text) - i), 0, -1):
                targets = self.phrases.get(tuple(text[i : i + n]))
                if targets:
                    # "Only jeans" opens a sentence: its capital says nothing
                    opening = i == 0 or text[i - 1] in {".", "!", "?"}
                    cased = toks[i].raw[:1].isupper() and not opening
                    targets = tuple(t for t in targets if cased or not t.cased)
                if targets:
                    found.append((i, i + n, targets))
        taken: set[int] = set()
        out: list[Match] = []
        for start, end, targets in sorted(found, key=lambda f: (f[0] - f[1], f[2][0].tier, f[0])):
            if taken.isdisjoint(range(start, end)):
                taken.update(range(start, end))
                out.append(Match(start, end, targets))
        return sorted(out, key=lambda m: m.start)

    def correct(self, word: str) -> str | None:
        """The catalog word ``word`` misspells (one edit up to 8 letters, two beyond), or None.

        A known word, a short word or a number is never corrected: a typo fix that turns
        "looking" into "cooking" is worse than none.
        """
        if word in self._fixes:
            return self._fixes[word]
        fix = None
        if word.isalpha() and len(word) >= 5 and word not in self.known | STOPWORDS:
            fix = next((f for f in sorted(singulars(word)) if (f,) in self.phrases), None)
            limit = 1 if len(word) <= 8 else 2
            found = [
                (osa(word, cand, limit), (cand,) not in self.phrases, cand)
                for cand in self._index_words.get(word[0], [])
                if abs(len(cand) - len(word)) <= limit
            ]
            close = [f for f in found if f[0] <= limit]
            fix = fix or (min(close)[2] if close else None)
        if len(self._fixes) < 50_000:
            self._fixes[word] = fix
        return fix

    # --- reading matches -------------------------------------------------------------------

    def resolve_category(
        self, found: Sequence[Sequence[Target]], context: set[str], current: str | None = None
    ) -> tuple[str | None, list[str]]:
        """One category for the category readings of a message's phrases (one sequence per
        phrase), and the options when there is no single one (then their lowest common
        ancestor, or None)."""
        groups = [[t for t in g if t.kind == "category"] for g in found]
        groups = [g for g in groups if g]
        if not groups:
            return None, []
        best = min(t.tier for g in groups for t in g)
        paths = sorted({t.value for g in groups for t in g if t.tier == best})
        chosen, options = self._pick(paths, context, current)
        if chosen is None:
            return None, options
        # "jacket for running": the Running subcategory, narrowed by the other phrase's leaves
        others = {t.value for g in groups if all(t.value != chosen for t in g) for t in g}
        under = [p for p in others if p.startswith(chosen + " > ")]
        return (under[0], []) if len(under) == 1 else (chosen, options)

    def _pick(
        self, paths: list[str], context: set[str], current: str | None
    ) -> tuple[str | None, list[str]]:
        deepest = max(paths, key=lambda p: p.count(">"))
        if all(deepest == p or deepest.startswith(p + " > ") for p in paths):
            return deepest, []
        scores = {p: len(context & set(words(p.replace(" > ", " ")))) for p in paths}
        top = max(scores.values())
        if top > 0 and list(scores.values()).count(top) == 1:
            return max(scores, key=lambda p: scores[p]), []
        if current:
            under = [p for p in paths if p == current or p.startswith(current + " > ")]
            if len(under) == 1:
                return under[0], []
        common = []
        for level in zip(*(p.split(" > ") for p in paths), strict=False):
            if len(set(level)) > 1:
                break
            common.append(level[0])
        return (" > ".join(common) or None), paths

    def resolve_value(
        self, targets: Sequence[Target], category: str | None, context: Iterable[str] = ()
    ) -> Target:
        """The reading of an attribute value that the category has, or whose key the message
        names ("dry skin": skin_type, not hair_type), else the most common."""
        if len(targets) > 1 and category:
            inside = [t for t in targets if self.has_value(t.key, t.value, category)]
            targets = inside or targets
        said = set(context)
        named = [t for t in targets if said & set(words(t.key.replace("_", " ")))]
        targets = named or targets
        return max(
            targets, key=lambda t: (-t.tier, len(self.value_leaves.get((t.key, t.value), ())))
        )

    def sells(self, brand: str, category: str) -> bool:
        """Does ``brand`` have items under ``category`` (True when the catalog can't tell)?"""
        leaves = self.brand_leaves.get(brand)
        return leaves is None or any(
            p == category or p.startswith(category + " > ") for p in leaves
        )

    def value_in(self, key: str, value: str, category: str | None) -> str:
        """``value``, or the one value of ``key`` under ``category`` that contains its words:
        "wool" for winter jackets is their "wool blend"."""
        if not category or self.has_value(key, value, category):
            return value
        said = set(words(value))
        inside = [
            v
            for v in self.values.get(key, [])
            if said <= set(words(v)) and self.has_value(key, v, category)
        ]
        return inside[0] if len(inside) == 1 else value

    def has_value(self, key: str, value: str, category: str) -> bool:
        return any(
            p == category or p.startswith(category + " > ")
            for p in self.value_leaves.get((key, value), ())
        )

    def keys_for(self, category: str) -> frozenset[str]:
        """Attribute keys the items under ``category`` have."""
        return frozenset().union(
            *(
                k
                for p, k in self.leaf_keys.items()
                if p == category or p.startswith(category + " > ")
            )
        )

    def nearest_category(self, text: str, among: Sequence[str] | None = None) -> str | None:
        """The leaf closest in meaning to ``text``, when the encoder is given and sure enough."""
        paths = list(among or self.leaves)
        if self.similarity is None or not paths or not text.strip():
            return None
        sims = np.asarray(self.similarity(text, [p.split(" > ")[-1] for p in paths]), float)
        best = int(np.argmax(sims))
        return paths[best] if sims[best] >= self.min_similarity else None

    def item(self, item_id: str) -> tuple[str, float | None, dict[str, list[str]]] | None:
        """(brand, price, attribute values) of a catalog item, None when unknown."""
        row = self.catalog.index.get(str(item_id))
        if row is None:
            return None
        brand = str(self.catalog.brand[row]) if self.catalog.brand is not None else ""
        price = float(self.catalog.price[row]) if self.catalog.price is not None else None
        attrs = self.item_values[row] if self.item_values else {}
        return brand, (price if price == price else None), attrs


def _attributes(
    catalog: Catalog,
) -> tuple[
    list[dict[str, list[str]]],
    dict[str, Counter[str]],
    dict[tuple[str, str], frozenset[str]],
    dict[str, frozenset[str]],
]:
    """Per item its attribute values; per key the values' counts; where each value and key
    occurs. Keys with hundreds of values are free text (model numbers), not facets: skipped."""
    if catalog.attributes is None:
        return [], {}, {}, {}
    parsed: dict[str, dict[str, list[str]]] = {}
    for doc in set(catalog.attributes):
        try:
            raw = json.loads(doc) if doc else {}
        except (TypeError, ValueError):
            raw = {}
        out: dict[str, list[str]] = {}
        for key, value in raw.items() if isinstance(raw, dict) else ():
            vals = value if isinstance(value, list) else [value]
            clean = [
                str(v).strip()
                for v in vals
                if isinstance(v, str | int | float)
                and not isinstance(v, bool)
                and 0 < len(str(v).strip()) <= 40
            ]
            if clean:
                out[str(key)] = clean
        parsed[doc] = out
    per_item = [parsed[d] for d in catalog.attributes]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    where: dict[tuple[str, str], set[str]] = defaultdict(set)
    keys: dict[str, set[str]] = defaultdict(set)
    leaves = catalog.category if catalog.category is not None else [""] * len(per_item)
    for (doc, leaf), n in Counter(zip(catalog.attributes, leaves, strict=True)).items():
        for key, vals in parsed[doc].items():
            keys[leaf].add(key)
            for v in vals:
                counts[key][v] += n
                where[(key, v)].add(leaf)
    facets = {k for k, c in counts.items() if len(c) <= 300}
    return (
        [{k: v for k, v in a.items() if k in facets} for a in per_item],
        {k: c for k, c in counts.items() if k in facets},
        {kv: frozenset(p) for kv, p in where.items() if kv[0] in facets},
        {leaf: frozenset(k & facets) for leaf, k in keys.items()},
    )
