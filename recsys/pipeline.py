"""Stages and their assembly: each stage declares what it reads and writes.

A :class:`Pipeline` checks the declarations once, when it is built: every key a stage reads must
be a pipeline input or written by an earlier stage, and no two stages write the same key. On a
request, each stage gets the shared state, returns exactly the keys it declared, and is timed
into a per-stage trace. Stages know nothing of HTTP; ``serving/`` adapts them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class PipelineError(ValueError):
    """A pipeline is wired wrong (raised when it is built) or a stage broke its declaration."""


@runtime_checkable
class Stage(Protocol):
    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """Read ``reads`` from ``state``; return a dict with exactly the ``writes`` keys."""
        ...


@dataclass
class Result:
    state: dict[str, Any]
    trace: list[tuple[str, float]] = field(default_factory=list)  # (stage, milliseconds)

    def timings(self) -> dict[str, float]:
        return dict(self.trace)


class Pipeline:
    def __init__(self, stages: Sequence[Stage], inputs: Iterable[str]) -> None:
        self.stages = tuple(stages)
        self.inputs = tuple(inputs)
        available = set(self.inputs)
        written_by: dict[str, str] = {}
        for stage in self.stages:
            if not isinstance(stage, Stage):
                raise PipelineError(f"{stage!r} is not a stage (needs name, reads, writes, run)")
            missing = [key for key in stage.reads if key not in available]
            if missing:
                raise PipelineError(
                    f"stage {stage.name!r} reads {missing}, which nothing before it provides; "
                    f"available at that point: {sorted(available)}"
                )
            for key in stage.writes:
                if key in written_by or key in self.inputs:
                    owner = written_by.get(key, "the pipeline inputs")
                    raise PipelineError(
                        f"stage {stage.name!r} writes {key!r}, already provided by {owner}"
                    )
                written_by[key] = stage.name
            available |= set(stage.writes)
        self.outputs = tuple(sorted(available))

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"stage": s.name, "reads": list(s.reads), "writes": list(s.writes)} for s in self.stages
        ]

    def run(self, inputs: Mapping[str, Any]) -> Result:
        missing = [key for key in self.inputs if key not in inputs]
        if missing:
            raise PipelineError(
                f"missing pipeline input(s) {missing}; expected {list(self.inputs)}"
            )
        result = Result(state=dict(inputs))
        for stage in self.stages:
            started = time.perf_counter()
            out = stage.run(result.state)
            if set(out) != set(stage.writes):
                raise PipelineError(
                    f"stage {stage.name!r} returned {sorted(out)}, declared {list(stage.writes)}"
                )
            result.state.update(out)
            result.trace.append((stage.name, (time.perf_counter() - started) * 1000.0))
        return result
