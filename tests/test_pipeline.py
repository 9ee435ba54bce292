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
