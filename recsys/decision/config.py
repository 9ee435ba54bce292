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

Every key is checked when the file is read; an unknown one is refused with the valid ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

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


def _keys(doc: Any, valid: list[str], where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise DecisionConfigError(f"{where} must be a mapping, got {type(doc).__name__}")
    unknown = sorted(set(doc) - set(valid))
    if unknown:
        raise DecisionConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {valid}")
    return doc


def _strings(doc: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = doc.get(key, ())
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise DecisionConfigError(f"{where}.{key} must be a list of strings, got {value!r}")
    return tuple(value)


def _match(doc: Any, where: str) -> Match:
    doc = _keys(doc, ["item_ids", "brands", "categories"], where)
    return Match(**{k: _strings(doc, k, where) for k in ("item_ids", "brands", "categories")})


def decision_config(doc: dict[str, Any] | None) -> DecisionConfig:
    """A :class:`DecisionConfig` from a parsed document; every key checked."""
    doc = _keys(doc or {}, [f.name for f in fields(DecisionConfig)], "decision config")
    caps = doc.get("category_caps", {})
    if not isinstance(caps, dict):
        raise DecisionConfigError(f"category_caps must map category -> count, got {caps!r}")
    boosts = []
    for i, rule in enumerate(doc.get("boosts", [])):
        rule = _keys(rule, ["match", "weight"], f"boosts[{i}]")
        boosts.append(Boost(_match(rule.get("match"), f"boosts[{i}].match"), float(rule["weight"])))
    div = _keys(doc.get("diversity", {}), ["method", "lambda", "max_per_leaf"], "diversity")
    explore = _keys(doc.get("exploration", {}), ["epsilon", "pool"], "exploration")
    return DecisionConfig(
        hide_out_of_stock=bool(doc.get("hide_out_of_stock", True)),
        exclude_purchased=bool(doc.get("exclude_purchased", True)),
        category_caps=tuple((str(c), int(n)) for c, n in caps.items()),
        boosts=tuple(boosts),
        bury=tuple(_match(m, f"bury[{i}]") for i, m in enumerate(doc.get("bury", []))),
        diversity=Diversity(
            method=div.get("method", "none"),
            mmr_lambda=float(div.get("lambda", 0.8)),
            max_per_leaf=div.get("max_per_leaf"),
        ),
        exploration=Exploration(
            epsilon=float(explore.get("epsilon", 0.0)), pool=int(explore.get("pool", 50))
        ),
    )


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
    except (TypeError, KeyError) as exc:
        raise DecisionConfigError(f"decision config {file}: {exc}") from exc
