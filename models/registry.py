"""Candidate models by name, for the CLI and benchmarks."""

from __future__ import annotations

from collections.abc import Callable

from models.als import ALSModel
from models.attributes import AttributesModel
from models.base import CandidateModel
from models.covisit import CovisitModel
from models.popular import PopularModel
from models.sasrec import SASRecConfig, SASRecModel
from models.text import TextConfig, TextModel

MODELS: dict[str, Callable[[], CandidateModel]] = {
    "popular": PopularModel,
    "covisit": CovisitModel,
    # One thread: on shared cores an oversubscribed OpenMP pool made it ~10x slower, and at
    # hidden 64 a second thread gains ~1.5x at best; benchmarks set their own.
    "sasrec": lambda: SASRecModel(SASRecConfig(threads=1)),
    "als": ALSModel,
    "text": lambda: TextModel(TextConfig(threads=1)),
    "attributes": AttributesModel,
}


def make_model(name: str) -> CandidateModel:
    try:
        factory = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; valid models are {sorted(MODELS)}") from None
    return factory()
