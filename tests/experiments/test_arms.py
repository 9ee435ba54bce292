"""Arms without HTTP: sticky assignment, monotone ramps, shadows never shown, the store shared by
workers and restarts, and the guardrail rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recsys.experiments.arms import (
    Arm,
    Experiment,
    ExperimentConflictError,
    ExperimentError,
    ExperimentStore,
    assign,
    promote,
    ramp,
    rollback,
)
from recsys.experiments.guardrail import Guardrail, GuardrailRule

USERS = [f"u{n}" for n in range(4000)]


def _experiment(share: float = 0.05) -> Experiment:
    return Experiment(
        name="ranker-v2",
        salt="s1",
        control=Arm("control"),
        candidates=(
            Arm("v2", "bundles/v2", share=share),
            Arm("v3", "bundles/v3", share=0.5, shadow=True),
        ),
    )


def _arms(experiment: Experiment) -> dict[str, str]:
    return {u: assign(experiment, u).arm.name for u in USERS}


def test_ramp_only_adds_shoppers_and_shares_hold() -> None:
    exp = _experiment(0.05)
    seen = _arms(exp)
    for share in (0.05, 0.25, 0.5):
        exp = ramp(exp, "v2", share)
        now = _arms(exp)
        in_v2 = {u for u, a in now.items() if a == "v2"}
        assert {u for u, a in seen.items() if a == "v2"} <= in_v2  # nobody goes back
        assert len(in_v2) / len(USERS) == pytest.approx(share, abs=0.025)
        seen = now
    assert [h["share"] for h in exp.history] == [0.05, 0.25, 0.5]


def test_shadow_runs_on_its_share_but_is_never_shown() -> None:
    exp = _experiment(0.5)
    got = [assign(exp, u) for u in USERS]
    assert all(a.arm.name != "v3" for a in got)
    shadowed = sum(any(s.name == "v3" for s in a.shadows) for a in got)
    assert shadowed / len(USERS) == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ExperimentError, match="is a shadow"):
        promote(exp, "v3")


def test_salt_reshuffles_and_caps_are_checked() -> None:
    a = _arms(_experiment(0.5))
    b = {
        u: assign(Experiment("x", "other", Arm("control"), (Arm("v2", share=0.5),)), u).arm.name
        for u in USERS
    }
    assert 0.4 < sum(a[u] == b[u] for u in USERS) / len(USERS) < 0.6
    with pytest.raises(ExperimentError, match=r"at most 1/2"):
        Experiment("x", "s", Arm("control"), (Arm("a", share=0.6), Arm("b", share=0.1)))
    with pytest.raises(ExperimentError, match=r"unknown arm 'nope'.*\['control', 'v2', 'v3'\]"):
        ramp(_experiment(), "nope", 0.1)


def test_promote_and_rollback_end_the_experiment() -> None:
    exp = _experiment(0.25)
    won = promote(exp, "v2", "better CTR")
    assert set(_arms(won).values()) == {"v2"}
    back = rollback(exp, "p99")
    assert set(_arms(back).values()) == {"control"}
    with pytest.raises(ExperimentConflictError, match="is rolled_back"):
        ramp(back, "v2", 0.5)


def test_store_is_shared_by_workers_and_survives_restarts(tmp_path: Path) -> None:
    path = tmp_path / "experiments.sqlite"
    one, two = ExperimentStore(path, refresh=0.0), ExperimentStore(path, refresh=0.0)
    one.create(_experiment(0.05))
    with pytest.raises(ExperimentConflictError, match="exists already"):
        two.create(_experiment(0.05))
    two.update("ranker-v2", lambda e: ramp(e, "v2", 0.25))
    assert one.get("ranker-v2").arm("v2").share == 0.25  # the other worker sees the ramp
    mine = {u: assign(one.get("ranker-v2"), u).arm.name for u in USERS[:200]}
    one.close()
    two.close()
    # another process, as a restarted worker: the same arm for every shopper
    script = (
        "import json, sys\n"
        "from recsys.experiments.arms import ExperimentStore, assign\n"
        f"exp = ExperimentStore({str(path)!r}).get('ranker-v2')\n"
        f"print(json.dumps({{u: assign(exp, u).arm.name for u in {USERS[:200]!r}}}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    import json

    assert json.loads(out.stdout) == mine
    assert "v2" in mine.values() and "control" in mine.values()


def test_one_experiment_runs_at_a_time(tmp_path: Path) -> None:
    store = ExperimentStore(tmp_path / "e.sqlite", refresh=0.0)
    store.create(_experiment())
    with pytest.raises(ExperimentConflictError, match="is running; promote or roll it back"):
        store.create(Experiment("next", "s2", Arm("control"), (Arm("v9", share=0.1),)))
    store.update("ranker-v2", lambda e: rollback(e, "done"))
    store.create(Experiment("next", "s2", Arm("control"), (Arm("v9", share=0.1),)))
    active = store.active()
    assert active is not None and active.name == "next"


def test_guardrail_fires_on_an_injected_regression() -> None:
    rule = GuardrailRule(
        window_seconds=60, min_requests=100, max_error_rate_increase=0.02, max_p99_ratio=1.5
    )
    guard = Guardrail(rule)
    for n in range(300):
        guard.observe("control", 0.010, failed=n % 100 == 0, now=n * 0.1)
        guard.observe("v2", 0.011, failed=n % 100 == 0, now=n * 0.1)
    assert guard.verdict("control", "v2", now=30.0) is None  # same health: holds
    for n in range(300, 360):
        guard.observe("v2", 0.011, failed=n % 5 == 0, now=n * 0.1)  # 20% errors
    why = guard.verdict("control", "v2", now=36.0)
    assert why is not None and why.startswith("error rate")
    slow = Guardrail(rule)
    for n in range(200):
        slow.observe("control", 0.010, failed=False, now=n * 0.1)
        slow.observe("v2", 0.030, failed=False, now=n * 0.1)
    why = slow.verdict("control", "v2", now=20.0)
    assert why is not None and why.startswith("p99 30.0 ms vs control 10.0 ms")
    # outside the window the evidence is gone
    assert slow.verdict("control", "v2", now=200.0) is None
