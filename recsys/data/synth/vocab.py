"""Attribute vocabularies, brands and the text templates that turn attributes into titles and
descriptions. The category tree that uses these lives in :mod:`.taxonomy`."""

from __future__ import annotations

import numpy as np

# --- attribute vocabularies ------------------------------------------------------------------

APPAREL_COLOURS = (
    "black",
    "white",
    "grey",
    "navy",
    "blue",
    "red",
    "green",
    "beige",
    "brown",
    "pink",
    "burgundy",
    "olive",
)
NEUTRAL_COLOURS = ("black", "grey", "navy", "beige", "brown", "olive")
SPORT_COLOURS = (
    "black",
    "white",
    "grey",
    "blue",
    "red",
    "green",
    "orange",
    "yellow",
    "pink",
    "teal",
)
TECH_COLOURS = ("black", "white", "silver", "space grey", "blue", "rose gold")
HOME_COLOURS = ("white", "cream", "grey", "black", "blue", "sage", "terracotta", "mustard")
KIDS_COLOURS = ("red", "blue", "yellow", "green", "pink", "purple", "orange", "multicolour")
GARDEN_COLOURS = ("green", "black", "grey", "terracotta", "blue")

# One global list, so behaviour code can hold a user's favourite colours in a bitmask.
COLOURS: tuple[str, ...] = tuple(
    dict.fromkeys(
        APPAREL_COLOURS
        + SPORT_COLOURS
        + TECH_COLOURS
        + HOME_COLOURS
        + KIDS_COLOURS
        + GARDEN_COLOURS
    )
)

APPAREL_SIZES = ("XS", "S", "M", "L", "XL", "XXL")
SML = ("S", "M", "L")
SHOE_SIZES = tuple(f"EU {n}" for n in range(36, 47))
KIDS_SHOE_SIZES = tuple(f"EU {n}" for n in range(24, 36))
BED_SIZES = ("single", "double", "king", "super king")

ADULT = ("men", "women", "unisex")
GENDERED = ("men", "women")
KIDS = ("girls", "boys", "kids")
ALL_AGES = ("men", "women", "unisex", "kids")

# Codes used by the behaviour model; the order is fixed (see AUDIENCE_FIT in behaviour.py).
AUDIENCES: tuple[str, ...] = ("unisex", "men", "women", "kids", "girls", "boys", "baby")
SEASONS: tuple[str, ...] = ("all-season", "winter", "summer")
WARM_MATERIALS = frozenset(
    {
        "merino",
        "lambswool",
        "cashmere blend",
        "alpaca",
        "merino wool",
        "wool",
        "wool blend",
        "down",
        "synthetic fill",
        "polar",
        "sherpa",
        "fleece",
        "fleece-lined",
        "sheepskin",
        "wool felt",
        "faux fur",
        "cotton fleece",
    }
)
LIGHT_MATERIALS = frozenset({"linen", "linen blend", "mesh", "bamboo", "organic cotton"})

# --- brands ----------------------------------------------------------------------------------

TIERS: tuple[str, ...] = ("budget", "mid", "premium")
TIER_PRICE = np.array([0.6, 1.0, 1.8])
TIER_QUALITY = np.array([-0.25, 0.0, 0.25])

# top category -> brands per tier (budget, mid, premium)
BRANDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "Fashion": (
        ("Basicly", "Threadline", "Urbanwear", "Dailyfit"),
        ("Northpeak", "Harbour & Lane", "Copperleaf", "Wildmoor", "Fieldstone"),
        ("Maison Verdier", "Ashcombe", "Laine Atelier"),
    ),
    "Footwear": (
        ("Stepsmart", "Kicksy", "Pacebase"),
        ("Stridewell", "Trailcraft", "Cobble & Co", "Lunaro"),
        ("Bennett Last", "Alpenfeld", "Oxhide Works"),
    ),
    "Sports & Outdoors": (
        ("Fitbase", "Outrun", "Campzo", "Reelright"),
        ("Summitry", "Tideline", "Bluefin Angling", "Flowstate", "Ridgeway"),
        ("Kestrel Pro", "Arctera", "Velocita"),
    ),
    "Home & Kitchen": (
        ("Homely", "Kitchably", "Nestwell"),
        ("Copperpot", "Linenhouse", "Brewcraft", "Oak & Ember", "Hearthside"),
        ("Maison Clair", "Ferro Italia", "Nordlys"),
    ),
    "Beauty": (
        ("Glowly", "Purebasics", "Freshmint"),
        ("Bloomskin", "Velvetine", "Aquaveil", "Rosehip & Co"),
        ("Lumière Rare", "Aurelle", "Botanica Noir"),
    ),
    "Electronics": (
        ("Voltix", "Zapwire", "Connecta", "Pixelo"),
        ("Soundrift", "Keystone Tech", "Orbitek", "Nimbus Audio"),
        ("Aurion", "Helix Labs", "Sonavera"),
    ),
    "Grocery": (
        ("Pantry Basics", "Goodbuy", "Daily Harvest"),
        ("Beanroot", "Olivella", "Cocoa Loco", "Grainfield", "Leaf & Kettle"),
        ("Monte Verde", "Origin Reserve", "Maison Cacao"),
    ),
    "Toys & Baby": (
        ("Playbox", "Tinytots", "Funzy"),
        ("Brickwise", "Little Sprout", "Cuddleco", "Puzzleworks"),
        ("Wunderholz", "Nido Baby"),
    ),
    "Pets": (
        ("Petpal", "Happy Paws", "Bowlful"),
        ("Barkley", "Whiskerwood", "Tailwag", "Furlong"),
        ("Canis Select", "Feline Gourmet"),
    ),
    "Garden": (
        ("Greenthumb", "Sproutly", "Yardwise"),
        ("Hedgerow", "Fernhill", "Emberstone", "Bloomfield"),
        ("Verdant Forge", "Teakhaven"),
    ),
}

# Product-line names make titles of the same brand and attributes distinguishable.
SERIES = (
    "Classic",
    "Essential",
    "Pro",
    "Ultra",
    "Air",
    "Trail",
    "Everyday",
    "Signature",
    "Origin",
    "Flex",
    "Studio",
    "Heritage",
    "Venture",
    "Max",
    "Urban",
    "Nova",
)

# --- title and description rendering ---------------------------------------------------------

AUDIENCE_TITLE = {
    "men": "Men's",
    "women": "Women's",
    "kids": "Kids'",
    "girls": "Girls'",
    "boys": "Boys'",
    "baby": "Baby",
}
AUDIENCE_PHRASE = {
    "men": "for men",
    "women": "for women",
    "kids": "for kids",
    "girls": "for girls",
    "boys": "for boys",
    "baby": "for babies",
    "unisex": "for everyone",
}
# Attributes that read as adjectives go before the noun, measures after a comma; the rest
# only appear in the description.
ADJECTIVE_KEYS = (
    "type",
    "roast",
    "flavour",
    "scent",
    "ingredient",
    "spf",
    "connectivity",
    "fuel",
    "shape",
    "diet",
    "animal",
    "flower",
    "vegetable",
    "surface",
    "fit",
    "life_stage",
    "cocoa",
)
MEASURE_KEYS = (
    "weight",
    "volume",
    "pack_size",
    "capacity",
    "screen_size",
    "length",
    "pieces",
    "diameter",
    "power",
    "thickness",
)
MASS_NOUNS = frozenset(
    {
        "pasta",
        "granola",
        "green tea",
        "shampoo",
        "conditioner",
        "ground coffee",
        "sunscreen",
        "eau de parfum",
        "body lotion",
        "cat litter",
        "plant food",
        "dry dog food",
        "wet cat food",
        "extra virgin olive oil",
    }
)
ACRONYMS = {"gps": "GPS", "bbq": "BBQ", "tpu": "TPU"}

SEASON_SENTENCE = {
    "winter": "Built to keep you warm and cosy through cold winter days.",
    "summer": "Light and breathable for hot summer days.",
    "all-season": "Made for use all year round.",
}
TIER_SENTENCE = {
    "budget": ("Great value for everyday use.", "An affordable pick that covers the basics."),
    "mid": ("A dependable everyday choice.", "Balanced quality at a fair price."),
    "premium": (
        "Premium finish and materials, made to last.",
        "Crafted to a high standard, with a two-year warranty.",
    ),
}
DETAIL_SENTENCE = {
    "size": "Size {}.",
    "origin": "Sourced from {}.",
    "age_range": "Suitable for ages {}.",
    "players": "For {}.",
    "skin_type": "Suits {} skin.",
    "firmness": "A {} feel.",
    "memory": "Comes with {}.",
    "waterproofing": "Rated {}.",
    "fits": "Fits {}.",
    "hair_type": "Formulated for {} hair.",
}


def title_case(text: str) -> str:
    """Capitalise each word, unlike str.title, which breaks "chef's" and "eu 42"."""
    words = []
    for word in text.split(" "):
        parts = [ACRONYMS.get(p, p[:1].upper() + p[1:]) for p in word.split("-")]
        words.append("-".join(parts))
    return " ".join(words)


def render_title(brand: str, noun: str, attrs: dict[str, str], series: str | None) -> str:
    words = [brand]
    audience = attrs.get("audience")
    if audience in AUDIENCE_TITLE and not noun.startswith(audience):
        words.append(AUDIENCE_TITLE[audience])
    if series:
        words.append(series)
    if "colour" in attrs:
        words.append(title_case(attrs["colour"]))
    words.extend(title_case(attrs[k]) for k in ADJECTIVE_KEYS if k in attrs)
    if "material" in attrs:
        words.append(title_case(attrs["material"]))
    words.append(title_case(noun))
    title = " ".join(words)
    measures = [attrs[k] for k in MEASURE_KEYS if k in attrs]
    return f"{title}, {measures[0]}" if measures else title


def _takes_article(noun: str) -> bool:
    return not (noun in MASS_NOUNS or (noun.endswith("s") and not noun.endswith("ss")))


def render_description(
    brand: str, noun: str, tier: str, attrs: dict[str, str], rng: np.random.Generator
) -> str:
    """One to three sentences from the attributes; wording varies with ``rng``."""
    adjective = next((attrs[k] for k in ADJECTIVE_KEYS if k in attrs), None)
    words = [attrs[k] for k in ("colour",) if k in attrs]
    words += [w for w in (adjective, attrs.get("material")) if w]
    phrase = " ".join([*words, noun])
    if _takes_article(noun) or (words and not noun.endswith("s")):
        phrase = ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase
    lead = f"{phrase[0].upper()}{phrase[1:]} from {brand}"
    audience = attrs.get("audience")
    if audience in AUDIENCE_PHRASE:
        lead += f", {AUDIENCE_PHRASE[audience]}"
    sentences = [lead + "."]
    details = [DETAIL_SENTENCE[k].format(v) for k, v in attrs.items() if k in DETAIL_SENTENCE]
    details += [
        f"{k.replace('_', ' ').capitalize()}: {v}." for k, v in attrs.items() if k in MEASURE_KEYS
    ]
    season = attrs.get("season")
    if season:
        details.insert(0, SEASON_SENTENCE[season])
    elif attrs.get("material") in WARM_MATERIALS:
        details.insert(0, "Soft and warm for chilly days.")
    if details:
        sentences.append(
            details[int(rng.integers(len(details)))] if rng.random() < 0.5 else details[0]
        )
    if rng.random() < 0.6:
        options = TIER_SENTENCE[tier]
        sentences.append(options[int(rng.integers(len(options)))])
    return " ".join(sentences)
