"""Business rules of the decision layer, read from configuration (YAML or JSON).

Example (``serving/decision.example.yaml`` is a complete one)::

    hide_out_of_stock: true
    exclude_purchased: true
    category_caps: {"Fashion": 4}          # at most 4 items under Fashion in a list
    boosts:
      - {match: {brands: ["Urbanwear"]}, weight: 0.5}
    bury:
      - {categories: ["Kids"]}
    diversity: {method: mmr, lambda: 0.8, max_per_leaf: 3}
    exploration: {epsilon: 0.05, pool: 50}

Every key is checked when the file is read (:class:`DecisionRules`, whose JSON schema
``recsys schema decision-rules`` prints); an unknown key or a value out of range is refused in one
line naming it and what is valid. The stage reads the frozen dataclasses it builds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo

DiversityMethod = Literal["none", "mmr"]


class DecisionConfigError(ValueError):
    """The decision configuration is malformed; the message names the key and the valid ones."""


@dataclass(frozen=True)
class Match:
    """Items a rule applies to: any listed item id, brand, or category (path prefix)."""

    item_ids: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (self.item_ids or self.brands or self.categories):
            raise DecisionConfigError("a rule's match needs item_ids, brands or categories")


@dataclass(frozen=True)
class Boost:
    match: Match
    # added to the score in units of the list's score spread (std), so it means the same for
    # every ranker; negative demotes
    weight: float


@dataclass(frozen=True)
class Diversity:
    method: DiversityMethod = "none"
    # MMR: lambda * relevance - (1 - lambda) * similarity to what is already chosen
    mmr_lambda: float = 0.8
    max_per_leaf: int | None = None  # at most this many items of one leaf category per list

    def __post_init__(self) -> None:
        if self.method not in ("none", "mmr"):
            raise DecisionConfigError(
                f"diversity.method {self.method!r} is not valid; valid: ['none', 'mmr']"
            )
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise DecisionConfigError(f"diversity.lambda must be in [0, 1], got {self.mmr_lambda}")
        if self.max_per_leaf is not None and self.max_per_leaf < 1:
            raise DecisionConfigError(
                f"diversity.max_per_leaf must be >= 1, got {self.max_per_leaf}"
            )


@dataclass(frozen=True)
class Exploration:
    """Epsilon-greedy per slot: with probability ``epsilon`` a slot shows a uniformly drawn item
    from the ``pool`` best eligible items not otherwise shown."""

    epsilon: float = 0.0
    pool: int = 50

    def __post_init__(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0:
            raise DecisionConfigError(f"exploration.epsilon must be in [0, 1], got {self.epsilon}")
        if self.pool < 1:
            raise DecisionConfigError(f"exploration.pool must be >= 1, got {self.pool}")


@dataclass(frozen=True)
class DecisionConfig:
    hide_out_of_stock: bool = True
    exclude_purchased: bool = True  # the caller can turn it off per request
    category_caps: tuple[tuple[str, int], ...] = ()  # (category prefix, max items per list)
    boosts: tuple[Boost, ...] = ()
    bury: tuple[Match, ...] = ()  # matched items go below every unmatched one
    diversity: Diversity = field(default_factory=Diversity)
    exploration: Exploration = field(default_factory=Exploration)

    def __post_init__(self) -> None:
        bad = [(c, n) for c, n in self.category_caps if n < 1]
        if bad:
            raise DecisionConfigError(f"category_caps must be >= 1, got {bad}")


class _Rules(BaseModel):
    # A key the engine does not know is a typo that would silently do nothing: refuse it.
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchRule(_Rules):
    """Items a rule applies to; at least one list must be non-empty."""

    item_ids: tuple[str, ...] = Field(default=(), description="Item ids the rule applies to.")
    brands: tuple[str, ...] = Field(default=(), description="Brands the rule applies to.")
    categories: tuple[str, ...] = Field(
        default=(), description="Category paths (prefixes, e.g. 'Fashion > Shoes')."
    )

    @model_validator(mode="after")
    def _not_empty(self) -> MatchRule:
        if not (self.item_ids or self.brands or self.categories):
            raise ValueError("a rule's match needs item_ids, brands or categories")
        return self

    def build(self) -> Match:
        return Match(self.item_ids, self.brands, self.categories)


class BoostRule(_Rules):
    match: MatchRule = Field(description="The items to boost.")
    weight: float = Field(
        allow_inf_nan=False,
        description="Added to the score in units of the list's score spread (std); < 0 demotes.",
    )


class DiversityRule(_Rules):
    method: DiversityMethod = Field(default="none", description="'mmr' reorders the list.")
    mmr_lambda: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        alias="lambda",
        description="MMR: lambda * relevance - (1 - lambda) * similarity to the chosen items.",
    )
    max_per_leaf: int | None = Field(
        default=None, ge=1, description="At most this many items of one leaf category per list."
    )


class ExplorationRule(_Rules):
    epsilon: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Probability that a slot shows a drawn item."
    )
    pool: int = Field(default=50, ge=1, description="Draw among this many next-best items.")


class DecisionRules(_Rules):
    """The decision rules file (``RECSYS_DECISION_CONFIG``), as written in YAML or JSON."""

    hide_out_of_stock: bool = Field(default=True, description="Remove out-of-stock items.")
    exclude_purchased: bool = Field(default=True, description="Remove items already bought.")
    category_caps: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=dict, description="Category path -> at most this many items per list."
    )
    boosts: tuple[BoostRule, ...] = Field(default=(), description="Score boosts (or demotions).")
    bury: tuple[MatchRule, ...] = Field(
        default=(), description="Matched items go below every unmatched one."
    )
    diversity: DiversityRule = Field(
        default_factory=DiversityRule, description="MMR reordering and per-leaf caps."
    )
    exploration: ExplorationRule = Field(
        default_factory=ExplorationRule, description="Epsilon-greedy draws per slot."
    )

    def build(self) -> DecisionConfig:
        div, explore = self.diversity, self.exploration
        return DecisionConfig(
            hide_out_of_stock=self.hide_out_of_stock,
            exclude_purchased=self.exclude_purchased,
            category_caps=tuple(self.category_caps.items()),
            boosts=tuple(Boost(b.match.build(), b.weight) for b in self.boosts),
            bury=tuple(m.build() for m in self.bury),
            diversity=Diversity(div.method, div.mmr_lambda, div.max_per_leaf),
            exploration=Exploration(explore.epsilon, explore.pool),
        )


def decision_rules_schema() -> dict[str, Any]:
    """The JSON schema of the rules file (``recsys schema decision-rules``)."""
    return DecisionRules.model_json_schema()


def decision_config(doc: dict[str, Any] | None) -> DecisionConfig:
    """A :class:`DecisionConfig` from a parsed document; every key checked."""
    try:
        return DecisionRules.model_validate({} if doc is None else doc).build()
    except ValidationError as exc:
        raise DecisionConfigError(_explain(exc)) from None


_RANGE_ERRORS = {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}
_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))


def _explain(exc: ValidationError) -> str:
    """The first problem as one line: where, the bad value, and what is valid there."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc, kind, value = first["loc"], first["type"], first.get("input")
    if kind == "extra_forbidden":
        parent = loc[:-1]
        unknown = sorted(str(e["loc"][-1]) for e in errors if e["loc"][:-1] == parent)
        model = _model_at(parent)
        valid = [f.alias or n for n, f in model.model_fields.items()] if model else []
        return f"{_where(parent)}: unknown key(s) {unknown}; valid keys are {valid}"
    if kind == "missing":
        return f"{_where(loc)} is required"
    if kind in ("model_type", "dict_type"):
        return f"{_where(loc)} must be a mapping, got {type(value).__name__}"
    if kind in ("tuple_type", "list_type"):
        return f"{_where(loc)} must be a list, got {value!r}"
    if kind in _RANGE_ERRORS:
        return f"{_where(loc)} must be {_range(loc, first.get('ctx') or {})}, got {value!r}"
    message = first["msg"].removeprefix("Value error, ")
    return f"{_where(loc)}={value!r}: {message}"


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "decision config"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The rules model that validates the mapping at ``loc`` (None below a plain dict)."""
    model: type[BaseModel] | None = DecisionRules
    for part in loc:
        if isinstance(part, int):
            continue  # an index into a list of rules: same model
        info = _field(model, part)
        model = _model_in(info.annotation) if info is not None else None
    return model


def _field(model: type[BaseModel] | None, key: str) -> FieldInfo | None:
    fields = model.model_fields.items() if model is not None else ()
    return next((f for name, f in fields if (f.alias or name) == key), None)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_model_in, get_args(annotation))), None)


def _range(loc: tuple[int | str, ...], ctx: dict[str, Any]) -> str:
    # the error's context holds only the bound it broke: the field shows both ends
    bounds = dict(ctx)
    info = _field(_model_at(loc[:-1]), str(loc[-1]))
    for constraint in info.metadata if info is not None else ():
        bounds.update({k: getattr(constraint, k) for k, _ in _BOUNDS if hasattr(constraint, k)})
    if "ge" in bounds and "le" in bounds:
        return f"in [{bounds['ge']:g}, {bounds['le']:g}]"
    return " and ".join(f"{sign} {bounds[k]:g}" for k, sign in _BOUNDS if k in bounds)


def load_decision_config(path: str | Path | None) -> DecisionConfig:
    """Read a YAML or JSON file (None: the defaults)."""
    if path is None:
        return DecisionConfig()
    file = Path(path)
    if not file.is_file():
        raise DecisionConfigError(f"decision config {file}: no such file")
    text = file.read_text()
    try:
        doc = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise DecisionConfigError(f"decision config {file}: not valid ({exc})") from exc
    try:
        return decision_config(doc)
    except DecisionConfigError as exc:
        raise DecisionConfigError(f"decision config {file}: {exc}") from None
