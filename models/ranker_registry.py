"""Rankers by name, and which of them this machine can train.

The factories import their model lazily: naming a ranker must not cost a TorchRec import, and
must work where TorchRec is not installed at all (``pip install -e .[dev]`` without
``python -m recsys.bootstrap``). A ranker whose extra module is missing leaves the default
rankers; asking for it by name says how to install it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from models.optional import TORCHREC_MISSING, importable
from models.ranker_base import RankerModel


class RankerFactory(Protocol):
    def __call__(self, seed: int, progress: bool, **opts: Any) -> RankerModel: ...


def _config(cls: type[Any], seed: int, opts: dict[str, Any]) -> Any:
    """``cls(seed=seed, **opts)`` with an unknown field named, not a bare TypeError."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(opts) - fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; valid: {sorted(fields)}")
    return cls(**{"seed": seed, **opts})


def _lightgbm(seed: int, progress: bool, **opts: Any) -> RankerModel:
    from models.lgbm_ranker import LGBMRanker, LGBMRankerConfig

    return LGBMRanker(_config(LGBMRankerConfig, seed, opts))


def _dlrm(seed: int, progress: bool, **opts: Any) -> RankerModel:
    from models.dlrm import DLRMConfig, DLRMRanker

    return DLRMRanker(_config(DLRMConfig, seed, opts), progress=progress)


RANKERS: dict[str, RankerFactory] = {"lightgbm": _lightgbm, "dlrm": _dlrm}
# module a ranker needs beyond the core dependencies -> what to tell a user who lacks it
REQUIRES: dict[str, tuple[str, str]] = {"dlrm": ("torchrec", TORCHREC_MISSING)}


def missing(name: str, can_import: Callable[[str], bool] = importable) -> str | None:
    """Why ranker ``name`` cannot be trained here, or None when it can."""
    if name not in RANKERS:
        return f"unknown ranker(s) {[name]}; valid rankers are {sorted(RANKERS)}"
    need = REQUIRES.get(name)
    if need is not None and not can_import(need[0]):
        return need[1]
    return None


def available_rankers(can_import: Callable[[str], bool] = importable) -> tuple[str, ...]:
    """The registered rankers this machine can train, in registry order: the default set."""
    return tuple(name for name in RANKERS if missing(name, can_import) is None)


def check_rankers(names: Iterable[str], can_import: Callable[[str], bool] = importable) -> None:
    """Raise ValueError naming every unknown ranker, else the first that cannot train here."""
    names = list(names)
    unknown = sorted(set(names) - set(RANKERS))
    if unknown:
        raise ValueError(f"unknown ranker(s) {unknown}; valid rankers are {sorted(RANKERS)}")
    for name in names:
        reason = missing(name, can_import)
        if reason is not None:
            raise ValueError(reason)


def make_ranker(name: str, seed: int = 0, progress: bool = False, **opts: Any) -> RankerModel:
    """An unfitted ranker; ``opts`` override fields of its config (``DLRMConfig(workers=2)``)."""
    check_rankers([name])
    return RANKERS[name](seed, progress, **opts)
