"""Knobs of the synthetic shop. Defaults are tuned so that the funnel rates, activity and
long tail look like a mid-sized web shop and so that learned models clearly beat popularity."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GENERATOR_VERSION = "1.0.0"


@dataclass(frozen=True)
class SynthConfig:
    """Every knob of the generator; ``generate(config=SynthConfig(drift=0.0))`` switches one
    mechanism off, which is how tests measure what each mechanism contributes."""

    # Time window: a fixed end date keeps the output independent of the wall clock.
    end_ts: int = 1_719_792_000  # 2024-07-01T00:00:00Z
    days: int = 182

    # Users: heavy-tailed activity and sparse, drifting tastes.
    sessions_mean: float = 6.0
    sessions_sigma: float = 1.0
    max_sessions: int = 150
    top_alpha: float = 0.25
    leaf_alpha: float = 0.5
    drift: float = 0.75
    kids_rate: float = 0.3
    search_rate: float = 0.35

    # Sessions: a shop listing shows `candidates` items of the chosen leaf, biased to popular
    # ones; the user views the best-fitting few of them.
    views_mean: float = 2.7
    candidates: int = 20
    exposure_power: float = 0.9
    complement_rate: float = 0.55  # after a purchase, chance the next visit is for a complement
    continue_rate: float = 0.25  # chance a session moves on to another listing
    sibling_rate: float = 0.5  # ... and that the next listing is a sibling product type
    rebuy_rate: float = 0.7  # chance a consumable is refilled once more, each interval

    # Catalogue.
    in_stock_rate: float = 0.9
    quality_sigma: float = 1.4
    leaf_size_sigma: float = 0.5
    items_per_leaf: float = 25.0  # sets how many product types a catalogue of a given size has

    # User-item affinity weights (log-odds scale).
    w_quality: float = 0.5
    w_brand: float = 2.5
    w_price: float = 1.2
    w_colour: float = 0.8
    w_audience: float = 2.0
    w_season: float = 0.6
    w_query: float = 1.5
    w_position: float = 1.0
    noise: float = 1.0

    # Funnel: sigmoid(bias + slope * affinity) at each step.
    click_bias: float = -0.45
    cart_bias: float = -1.35
    purchase_bias: float = 0.05
    funnel_slope: float = 0.35

    # Search relevance set sizes; None scales them with the catalogue.
    attribute_queries: int | None = None
    longtail_queries: int | None = None

    def __post_init__(self) -> None:
        rates = (
            "drift",
            "kids_rate",
            "search_rate",
            "complement_rate",
            "continue_rate",
            "sibling_rate",
            "rebuy_rate",
            "in_stock_rate",
        )
        bad = [name for name in rates if not 0.0 <= getattr(self, name) <= 1.0]
        if self.days < 1 or self.candidates < 1 or self.views_mean < 1 or self.max_sessions < 1:
            bad.append("days/candidates/views_mean/max_sessions (must be >= 1)")
        if bad:
            raise ValueError(f"SynthConfig: invalid {', '.join(bad)}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
