"""Search relevance judgements from the generator's truth.

Three kinds of query: *head* (the leaf noun), *attribute* (noun plus attribute and price
constraints, built around a real item so a perfect match exists) and *longtail* (natural
language about a person and a hobby that never names the product, so lexical retrieval
struggles and a query rewrite can help). Grades come from the catalogue attributes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from .catalog import Catalog
from .config import SynthConfig
from .frames import object_frame
from .taxonomy import LEAF_BY_NOUN, LEAVES
from .vocab import LIGHT_MATERIALS, WARM_MATERIALS

NICE_CAPS = (5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500)
POSSESSIVE = {
    "men": "men's",
    "women": "women's",
    "kids": "kids'",
    "girls": "girls'",
    "boys": "boys'",
}
# Items of which audiences satisfy an audience in a query ("women's" fits a unisex item).
AUDIENCE_MATCH = {
    "men": ("men", "unisex"),
    "women": ("women", "unisex"),
    "kids": ("kids", "girls", "boys"),
    "girls": ("girls", "kids"),
    "boys": ("boys", "kids"),
}
# Attributes that may constrain an attribute query, in the order they are written.
QUERY_KEYS = (
    "audience",
    "colour",
    "type",
    "roast",
    "flavour",
    "scent",
    "spf",
    "ingredient",
    "material",
)

# hobby -> (ways to say it, leaf nouns it maps to); the phrases never contain those nouns.
HOBBIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fishing": (
        ("fishing", "going fishing at the weekend", "angling"),
        ("fishing rod", "fishing reel", "fishing jacket", "fishing lures"),
    ),
    "running": (
        ("running", "jogging", "training for a marathon"),
        ("running shoes", "running socks", "running jacket", "gps running watch"),
    ),
    "cooking": (
        ("cooking", "trying new recipes", "making dinner for friends"),
        ("frying pan", "saucepan", "chef's knife", "extra virgin olive oil", "spice mix"),
    ),
    "gardening": (
        ("gardening", "growing vegetables", "allotment gardening"),
        (
            "pruning shears",
            "garden hose",
            "hand trowel",
            "gardening gloves",
            "flower seeds",
            "vegetable seeds",
            "plant pot",
            "plant food",
        ),
    ),
    "gaming": (
        ("gaming", "video games", "playing online with friends"),
        ("game controller", "gaming headset", "gaming chair"),
    ),
    "yoga": (
        ("yoga", "pilates", "stretching in the morning"),
        ("yoga mat", "yoga block", "leggings"),
    ),
    "coffee": (
        ("coffee", "home espresso", "speciality coffee"),
        ("coffee machine", "coffee grinder", "mug", "coffee beans", "ground coffee"),
    ),
    "tea": (("tea", "afternoon tea", "tea tasting"), ("teapot", "green tea", "mug")),
    "camping": (
        ("camping", "hiking", "wild camping"),
        ("tent", "sleeping bag", "hiking backpack", "hiking boots"),
    ),
    "music": (
        ("music", "podcasts", "vinyl and playlists"),
        ("headphones", "earbuds", "bluetooth speaker"),
    ),
    "dogs": (
        ("dogs", "long walks with the dog", "dog training"),
        ("dry dog food", "dog toy", "dog bed", "dog lead"),
    ),
    "cats": (
        ("cats", "looking after kittens"),
        ("wet cat food", "cat litter", "scratching post", "cat toy"),
    ),
    "pampering": (
        ("pampering", "spa evenings", "self-care"),
        (
            "face moisturiser",
            "face serum",
            "body lotion",
            "bath bombs",
            "eau de parfum",
            "scented candle",
        ),
    ),
    "barbecues": (
        ("barbecues", "grilling in the garden", "summer parties outdoors"),
        ("bbq grill", "bbq tool set", "spice mix", "string lights"),
    ),
    "cosy nights": (
        ("cosy nights in", "lazy weekends on the sofa"),
        ("throw blanket", "cushion", "scented candle", "slippers", "mug"),
    ),
    "fitness": (
        ("the gym", "working out", "getting fit"),
        ("dumbbells", "leggings", "protein bars"),
    ),
}
PERSONAS: dict[str, tuple[str, ...] | None] = {
    "dad": ("men", "unisex"),
    "husband": ("men", "unisex"),
    "grandad": ("men", "unisex"),
    "brother": ("men", "unisex"),
    "mum": ("women", "unisex"),
    "wife": ("women", "unisex"),
    "grandma": ("women", "unisex"),
    "sister": ("women", "unisex"),
    "daughter": ("girls", "kids"),
    "son": ("boys", "kids"),
    "niece": ("girls", "kids"),
    "best friend": None,
    "partner": None,
}
WARMTH = {
    "winter": ("warm", "cosy", "really warm"),
    "summer": ("light", "breathable", "lightweight"),
}
SEASON_PHRASE = {
    "winter": (" in winter", " for the cold months", " this winter"),
    "summer": (" in summer", " for hot days", " this summer"),
}
BUDGET_PHRASE = (" under {}", ", nothing over {}", " on a budget of {}", " for less than {}")
LONGTAIL_TEMPLATES = (
    "something {warm}for my {persona} who likes {hobby}{season}{budget}",
    "gift for my {persona} who loves {hobby}{season}{budget}",
    "what can I get my {persona}? they are really into {hobby}{budget}",
    "my {persona} just took up {hobby}, what should I get them{season}{budget}",
    "{warm}present ideas for someone who enjoys {hobby}{season}{budget}",
)

Judged = list[tuple[int, int]]  # (internal item position, grade)


def _cap(price: float) -> int:
    return next((c for c in NICE_CAPS if c >= price), int(math.ceil(price / 500) * 500))


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _leaf_items(catalog: Catalog, leaf: int) -> range:
    return range(int(catalog.leaf_start[leaf]), int(catalog.leaf_start[leaf + 1]))


def _grade(
    catalog: Catalog, positions: list[int], checks: list[Callable[[int], bool]], most: bool
) -> Judged:
    """3 when every check passes, 2 for most (``most``) or some (not ``most``), else 1."""
    need = math.ceil(len(checks) / 2) if most else 1
    out = []
    for i in positions:
        ok = sum(check(i) for check in checks)
        out.append((i, 3 if ok == len(checks) else 2 if ok >= need else 1))
    return out


def head_queries(catalog: Catalog) -> list[tuple[str, str, Judged]]:
    out = []
    for leaf in LEAVES:
        own = list(_leaf_items(catalog, leaf.index))
        if not own:
            continue
        siblings = [
            i
            for other in LEAVES
            if other.sub == leaf.sub and other.top == leaf.top and other.index != leaf.index
            for i in _leaf_items(catalog, other.index)
        ]
        out.append(("head", leaf.spec.noun, [(i, 2) for i in own] + [(i, 1) for i in siblings]))
    return out


def attribute_query(catalog: Catalog, rng: np.random.Generator) -> tuple[str, str, Judged]:
    seed = int(rng.integers(len(catalog.leaf)))
    leaf = int(catalog.leaf[seed])
    noun, attrs = LEAVES[leaf].spec.noun, catalog.attrs[seed]
    keys = [k for k in QUERY_KEYS if k in attrs and (k != "audience" or attrs[k] in POSSESSIVE)]
    n_keys = min(len(keys), int(rng.integers(1, 3)))
    chosen = sorted(rng.choice(len(keys), size=n_keys, replace=False).tolist()) if keys else []
    want = {keys[j]: attrs[keys[j]] for j in chosen}
    cap = _cap(float(catalog.price[seed]) * rng.uniform(1.0, 1.3))
    with_cap = rng.random() < 0.6 or len(want) < 2
    words = [POSSESSIVE[v] if k == "audience" else v for k, v in want.items()]
    text = " ".join([*words, noun]) + (f" under {cap}" if with_cap else "")

    def has(key: str, value: str) -> Callable[[int], bool]:
        def check(i: int) -> bool:
            got = catalog.attrs[i].get(key)
            if key == "audience":
                return got in AUDIENCE_MATCH[value]
            return got == value

        return check

    checks = [has(k, v) for k, v in want.items()]
    if with_cap:
        checks.append(lambda i: bool(catalog.price[i] <= cap))
    return "attribute", text, _grade(catalog, list(_leaf_items(catalog, leaf)), checks, True)


def longtail_query(catalog: Catalog, rng: np.random.Generator) -> tuple[str, str, Judged]:
    hobby = _pick(rng, tuple(HOBBIES))
    phrases, nouns = HOBBIES[hobby]
    leaves = [LEAF_BY_NOUN[n].index for n in nouns]
    positions = [i for leaf in leaves for i in _leaf_items(catalog, leaf)]
    template = _pick(rng, LONGTAIL_TEMPLATES)
    persona = _pick(rng, tuple(PERSONAS)) if "{persona}" in template else None
    audience = PERSONAS[persona] if persona else None
    season = _pick(rng, ("winter", "summer", "none", "none"))
    warm = season_text = ""
    slots = [s for s in ("warm", "season") if "{" + s + "}" in template]
    if season == "none" or not slots:
        season = "none"
    else:
        # Say it as a warmth word, a season phrase, or both ("something warm ... in winter").
        use = slots if len(slots) == 1 or rng.random() < 0.3 else [_pick(rng, tuple(slots))]
        warm = _pick(rng, WARMTH[season]) + " " if "warm" in use else ""
        season_text = _pick(rng, SEASON_PHRASE[season]) if "season" in use else ""
    prices = catalog.price[positions] if positions else np.array([100.0])
    cap = _cap(float(np.quantile(prices, rng.uniform(0.2, 0.7))))
    with_cap = rng.random() < 0.5 or (audience is None and season == "none")
    text = template.format(
        warm=warm,
        persona=persona or "",
        hobby=_pick(rng, phrases),
        season=season_text,
        budget=_pick(rng, BUDGET_PHRASE).format(cap) if with_cap else "",
    )

    checks: list[Callable[[int], bool]] = []
    if audience is not None:
        allowed = audience
        checks.append(lambda i: catalog.attrs[i].get("audience", allowed[0]) in allowed)
    if season != "none":
        fitting = WARM_MATERIALS if season == "winter" else LIGHT_MATERIALS
        checks.append(
            lambda i: (
                catalog.attrs[i].get("season") == season
                or catalog.attrs[i].get("material") in fitting
            )
        )
    if with_cap:
        checks.append(lambda i: bool(catalog.price[i] <= cap))
    return "longtail", " ".join(text.split()), _grade(catalog, positions, checks, False)


def build_queries(
    catalog: Catalog, cfg: SynthConfig, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Returns (queries, qrels, number of generated queries dropped for having no grade>=2)."""
    n_items = len(catalog.leaf)
    n_attr = cfg.attribute_queries
    n_attr = int(np.clip(n_items // 20, 50, 240)) if n_attr is None else n_attr
    n_long = cfg.longtail_queries
    n_long = int(np.clip(n_items // 50, 30, 150)) if n_long is None else n_long

    made = head_queries(catalog)
    seen = {text for _, text, _ in made}
    dropped = 0
    for maker, target in ((attribute_query, n_attr), (longtail_query, n_long)):
        count = 0
        for _ in range(5 * target):
            if count >= target:
                break
            kind, text, judged = maker(catalog, rng)
            if text in seen:
                continue
            seen.add(text)
            if not any(grade >= 2 for _, grade in judged):
                dropped += 1
                continue
            made.append((kind, text, judged))
            count += 1

    width = max(4, len(str(len(made) - 1)))
    ids = [f"q{i:0{width}d}" for i in range(len(made))]
    queries = object_frame(
        {"query_id": ids, "text": [t for _, t, _ in made], "kind": [k for k, _, _ in made]}
    )
    rows = [(qid, i, g) for qid, (_, _, judged) in zip(ids, made, strict=True) for i, g in judged]
    qrels = object_frame(
        {
            "query_id": np.array([r[0] for r in rows], dtype=object),
            "item_id": catalog.item_ids[np.array([r[1] for r in rows], dtype=np.int64)],
            "grade": np.array([r[2] for r in rows], dtype=np.int64),
        }
    )
    return queries, qrels, dropped
