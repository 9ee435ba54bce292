"""The built-in synthetic shop: the engine's embedded default dataset.

``generate(users, items, seed)`` returns a validated :class:`recsys.data.contract.Dataset`
with a realistic catalogue, a browsing/buying log with drifting tastes, complements and
refills, and graded search queries (head, attribute and long-tail).
"""

from .config import GENERATOR_VERSION, SynthConfig
from .generator import generate

__all__ = ["GENERATOR_VERSION", "SynthConfig", "generate"]
