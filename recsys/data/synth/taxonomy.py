"""The category tree flattened into indexed leaves, plus which leaves complement which.

The tree itself (nouns, attributes, prices, refill intervals) is data in :mod:`.tree`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .tree import TREE, LeafSpec


@dataclass(frozen=True)
class Leaf:
    """A leaf placed in the tree; ``index`` is its position in :data:`LEAVES`."""

    index: int
    top: str
    sub: str
    spec: LeafSpec

    @property
    def path(self) -> str:
        return f"{self.top} > {self.sub} > {self.spec.name}"


# After buying the key, shoppers often come back for one of these (by leaf noun).
COMPLEMENTS: dict[str, tuple[str, ...]] = {
    "winter jacket": ("wool scarf", "beanie", "gloves"),
    "fleece jacket": ("beanie", "gloves"),
    "jeans": ("t-shirt", "shirt", "sneakers"),
    "chinos": ("shirt", "chelsea boots"),
    "hiking boots": ("hiking backpack", "running socks"),
    "running shoes": ("running socks", "running jacket", "gps running watch"),
    "gps running watch": ("running shoes",),
    "fishing rod": ("fishing reel", "fishing lures"),
    "fishing reel": ("fishing lures",),
    "yoga mat": ("yoga block", "leggings"),
    "tent": ("sleeping bag", "hiking backpack"),
    "coffee machine": ("coffee beans", "ground coffee", "mug"),
    "coffee grinder": ("coffee beans",),
    "teapot": ("green tea", "mug"),
    "frying pan": ("chef's knife", "extra virgin olive oil", "saucepan"),
    "pasta": ("extra virgin olive oil", "spice mix"),
    "duvet": ("bed sheet set", "pillow"),
    "shampoo": ("conditioner",),
    "laptop": ("mouse", "laptop sleeve", "keyboard"),
    "game controller": ("gaming headset",),
    "gaming chair": ("gaming headset", "game controller"),
    "phone case": ("fast charger", "power bank"),
    "nappies": ("baby wipes",),
    "baby bottle": ("nappies",),
    "scooter": ("balance bike",),
    "dry dog food": ("dog toy", "dog lead"),
    "dog bed": ("dog toy",),
    "wet cat food": ("cat litter", "cat toy"),
    "scratching post": ("cat toy",),
    "plant pot": ("plant food", "flower seeds"),
    "vegetable seeds": ("plant food", "hand trowel"),
    "bbq grill": ("bbq tool set", "spice mix"),
    "garden chair": ("string lights",),
}

_FLAT = [
    (top, sub, spec) for top, subs in TREE.items() for sub, specs in subs.items() for spec in specs
]
LEAVES: tuple[Leaf, ...] = tuple(Leaf(i, *entry) for i, entry in enumerate(_FLAT))
TOPS: tuple[str, ...] = tuple(TREE)
LEAF_BY_NOUN: dict[str, Leaf] = {leaf.spec.noun: leaf for leaf in LEAVES}
