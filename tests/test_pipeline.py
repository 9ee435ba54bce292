"""Pipelines are checked when built; stages are held to what they declare."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from recsys.pipeline import Pipeline, PipelineError


@dataclass
class Step:
    name: str
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    lie: bool = False

    def run(self, state: Mapping[str, Any]) -> dict[str, Any]:
        out = {key: sum(state[r] for r in self.reads) + 1 for key in self.writes}
        return {**out, "extra": 1} if self.lie else out


def test_wiring_is_checked_when_built() -> None:
    with pytest.raises(PipelineError, match=r"stage 'b' reads \['y'\].*available.*\['u', 'x'\]"):
        Pipeline([Step("a", ("u",), ("x",)), Step("b", ("y",), ("z",))], inputs=["u"])
    with pytest.raises(PipelineError, match=r"writes 'x', already provided by a"):
        Pipeline([Step("a", ("u",), ("x",)), Step("b", ("u",), ("x",))], inputs=["u"])
    with pytest.raises(PipelineError, match="not a stage"):
        Pipeline([object()], inputs=["u"])  # type: ignore[list-item]


def test_run_traces_every_stage_and_checks_outputs() -> None:
    pipe = Pipeline([Step("a", ("u",), ("x",)), Step("b", ("u", "x"), ("z",))], inputs=["u"])
    result = pipe.run({"u": 1})
    assert result.state["z"] == 1 + 2 + 1
    assert [name for name, _ in result.trace] == ["a", "b"]
    assert all(ms >= 0 for _, ms in result.trace)
    assert pipe.describe()[1] == {"stage": "b", "reads": ["u", "x"], "writes": ["z"]}
    with pytest.raises(PipelineError, match="missing pipeline input"):
        pipe.run({})
    liar = Pipeline([Step("a", ("u",), ("x",), lie=True)], inputs=["u"])
    with pytest.raises(PipelineError, match=r"returned \['extra', 'x'\], declared \['x'\]"):
        liar.run({"u": 1})


@dataclass
class BatchStep(Step):
    """A Step that can also run several states at once; ``short`` answers one too few."""

    batches: list[int] | None = None
    short: bool = False

    def run_batch(self, states: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        if self.batches is not None:
            self.batches.append(len(states))
        outs = [self.run(s) for s in states]
        return outs[:-1] if self.short else outs


def test_run_batch_uses_batch_stages_once_and_answers_each_as_run_does() -> None:
    sizes: list[int] = []
    pipe = Pipeline(
        [BatchStep("a", ("u",), ("x",), batches=sizes), Step("b", ("u", "x"), ("z",))],
        inputs=["u"],
    )
    inputs = [{"u": u} for u in (1, 5, 9)]
    together = pipe.run_batch(inputs)
    assert [r.state for r in together] == [pipe.run(i).state for i in inputs]
    assert sizes == [3]  # once for all three; a plain stage runs per request
    assert all([name for name, _ in r.trace] == ["a", "b"] for r in together)
    pipe.run_batch(inputs[:1])
    assert sizes == [3]  # a batch of one runs the plain path
    with pytest.raises(PipelineError, match="missing pipeline input"):
        pipe.run_batch([{"u": 1}, {}])
    short = Pipeline([BatchStep("a", ("u",), ("x",), short=True)], inputs=["u"])
    with pytest.raises(PipelineError, match="stage 'a' answered 1 of 2 requests"):
        short.run_batch(inputs[:2])
    liar = Pipeline([BatchStep("a", ("u",), ("x",), lie=True)], inputs=["u"])
    with pytest.raises(PipelineError, match=r"returned \['extra', 'x'\], declared \['x'\]"):
        liar.run_batch(inputs[:2])
