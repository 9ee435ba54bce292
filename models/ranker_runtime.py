"""Which runtime scores a bundle's rankers when served: compiled trees, ONNX Runtime or native.

``RECSYS_RANKER_RUNTIME`` (read on first use):

- ``auto`` (default): tree rankers through compiled trees (lleaves) where lleaves imports and
  the bundle has their model text; everything else (the DLRM, older bundles) through ONNX
  Runtime. A tree model that fails to compile falls back to ONNX with a warning.
- ``lleaves``: as auto, but a tree ranker that cannot be compiled is an error, not a fallback.
- ``onnx``: every ranker through ONNX Runtime (the portable path; TensorRT/CUDA on a GPU).
- ``native``: the training library's own predict (slowest; for debugging a runtime).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.ranker_base import RankerModel
from recsys.ranking.frame import RankingFrame

Runtime = Literal["auto", "lleaves", "onnx", "native"]
RUNTIMES: tuple[str, ...] = ("auto", "lleaves", "onnx", "native")
COMPILED_DIR = "rankers/compiled"  # compiled objects by key, in the bundle (see compiled_trees)


class RankerRuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_RANKER_", extra="ignore")

    runtime: Runtime = Field(
        default="auto",
        description="auto | lleaves | onnx | native (see models.ranker_runtime); "
        "RECSYS_RANKER_RUNTIME.",
    )
    threads: int = Field(
        default=1,
        ge=1,
        description="Threads one scoring call uses: a request's 500 rows are too few to split; "
        "RECSYS_RANKER_THREADS.",
    )


@lru_cache(maxsize=1)
def get_runtime_settings() -> RankerRuntimeSettings:
    """The process's ranker runtime settings, read from the environment on first use."""
    return RankerRuntimeSettings()


def check_runtime(runtime: str) -> Runtime:
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown ranker runtime {runtime!r}; valid runtimes are {RUNTIMES}")
    return runtime  # type: ignore[return-value]


def compile_and_check(
    model: RankerModel, root: Path, name: str, sample: RankingFrame
) -> dict[str, Any]:
    """At training: write a tree ranker's model text, compile it into the bundle's cache and
    check its scores against native ones on ``sample``; the manifest entries ({} when the
    model has no trees or lleaves is missing, so ONNX serves it)."""
    from models import compiled_trees

    export = getattr(model, "export_trees", None)
    if export is None or not compiled_trees.available():
        return {}
    trees_file = f"rankers/{name}.txt"
    export(root / trees_file)
    compiled = compiled_trees.CompiledTrees(root / trees_file, root / COMPILED_DIR)
    diff = float(np.abs(compiled.run(model.onnx_feeds(sample)) - model.predict(sample)).max())
    if diff > model.onnx_tolerance:
        raise ValueError(
            f"{name}: compiled-tree scores differ from native by {diff:.2e} "
            f"(> {model.onnx_tolerance:.0e}); refusing to write a bundle that would serve "
            "other scores than were evaluated"
        )
    return {"trees": trees_file, "trees_max_abs_diff": diff}


def open_scorer(root: Path, entry: dict[str, Any], name: str, runtime: str | None = None) -> Any:
    """The session ``recsys.ranking.ranker.Ranker`` scores through (``run(feeds)``), or None
    for native scoring. ``runtime`` None reads ``RECSYS_RANKER_RUNTIME``."""
    settings = get_runtime_settings()
    chosen = check_runtime(runtime or settings.runtime)
    if chosen == "native":
        return None
    if chosen in ("auto", "lleaves") and "trees" in entry:
        from models import compiled_trees

        try:
            return compiled_trees.CompiledTrees(
                root / entry["trees"], root / COMPILED_DIR, threads=settings.threads
            )
        except Exception as exc:  # ImportError, or llvmlite too new (AttributeError)
            if chosen == "lleaves":
                raise RuntimeError(f"ranker {name!r}: compiled trees unavailable: {exc}") from exc
            warnings.warn(
                f"ranker {name!r} served through ONNX Runtime: compiled trees unavailable ({exc})",
                stacklevel=2,
            )
    from models.onnx_runtime import OnnxSession

    return OnnxSession(root / entry["onnx"], threads=settings.threads)
