"""Stages and their assembly: each stage declares what it reads and writes.

A :class:`Pipeline` checks the declarations once, when it is built: every key a stage reads must
be a pipeline input or written by an earlier stage, and no two stages write the same key. On a
request, each stage gets the shared state, returns exactly the keys it declared, and is timed
into a per-stage trace. Stages know nothing of HTTP; ``serving/`` adapts them.

:meth:`Pipeline.run_batch` runs several requests together: a stage that also has ``run_batch``
(a :class:`BatchStage`: retrieval, ranking) does one matrix product, one store read and one
ranker call for all of them; the others run request by request. Each request's answer is the
one :meth:`Pipeline.run` gives it alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable


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


@runtime_checkable
class BatchStage(Stage, Protocol):
    def run_batch(self, states: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`run` for each state, done together; one dict per state, in order."""
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
        # checked once: a runtime Protocol check costs microseconds on every call
        self._batches = tuple(isinstance(stage, BatchStage) for stage in self.stages)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"stage": s.name, "reads": list(s.reads), "writes": list(s.writes)} for s in self.stages
        ]

    def run(self, inputs: Mapping[str, Any]) -> Result:
        self._check_inputs(inputs)
        result = Result(state=dict(inputs))
        for stage in self.stages:
            started = time.perf_counter()
            out = stage.run(result.state)
            self._check_out(stage, out)
            result.state.update(out)
            result.trace.append((stage.name, (time.perf_counter() - started) * 1000.0))
        return result

    def run_batch(self, inputs: Sequence[Mapping[str, Any]]) -> list[Result]:
        """:meth:`run` for each of ``inputs``, batch stages once for all of them. A stage's
        time is traced as each request's share of it."""
        for one in inputs:
            self._check_inputs(one)
        results = [Result(state=dict(one)) for one in inputs]
        states = [r.state for r in results]
        for stage, batches in zip(self.stages, self._batches, strict=True):
            started = time.perf_counter()
            if batches and len(states) > 1:
                outs = cast(BatchStage, stage).run_batch(states)
            else:
                outs = [stage.run(state) for state in states]
            share = (time.perf_counter() - started) * 1000.0 / max(len(states), 1)
            if len(outs) != len(states):
                raise PipelineError(
                    f"stage {stage.name!r} answered {len(outs)} of {len(states)} requests"
                )
            for result, out in zip(results, outs, strict=True):
                self._check_out(stage, out)
                result.state.update(out)
                result.trace.append((stage.name, share))
        return results

    def _check_inputs(self, inputs: Mapping[str, Any]) -> None:
        missing = [key for key in self.inputs if key not in inputs]
        if missing:
            raise PipelineError(
                f"missing pipeline input(s) {missing}; expected {list(self.inputs)}"
            )

    @staticmethod
    def _check_out(stage: Stage, out: Mapping[str, Any]) -> None:
        if set(out) != set(stage.writes):
            raise PipelineError(
                f"stage {stage.name!r} returned {sorted(out)}, declared {list(stage.writes)}"
            )
