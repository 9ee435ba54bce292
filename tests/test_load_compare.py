"""benchmarks/load_compare.py: the ratios of two trees' load figures, round by round, and the
arguments it refuses."""

from __future__ import annotations

import sys

import pytest

from benchmarks import load_compare


def figures(cpu: float, p99: float, achieved: float = 200.0) -> dict[str, float]:
    return {
        "server_cpu_ms_per_request": cpu,
        "achieved_rps": achieved,
        "p50_ms": p99 / 3,
        "p99_ms": p99,
    }


def test_paired_ratios_cancel_a_drift_the_ratio_of_medians_keeps() -> None:
    # the machine slows down round after round; this tree costs half the base in every round
    base = [figures(4.0, 12.0), figures(6.0, 18.0), figures(9.0, 40.0)]
    this = [figures(2.0, 6.0), figures(3.0, 9.0), figures(4.5, 20.0)]
    got = load_compare.compare(base, this)
    cpu = got["server_cpu_ms_per_request"]
    assert cpu["paired_ratio"] == 0.5
    assert cpu["median_ratio"] == 0.5  # medians 3.0 / 6.0
    assert got["p99_ms"]["paired_ratio"] == 0.5
    assert got["achieved_rps"]["paired_ratio"] == 1.0
    # one round out of line moves the ratio of medians, not the median of the paired ones
    this[2] = figures(9.0, 40.0)
    got = load_compare.compare(base, this)
    assert got["server_cpu_ms_per_request"]["paired_ratio"] == 0.5
    assert got["server_cpu_ms_per_request"]["median_ratio"] == pytest.approx(0.5, abs=1e-9)
    this[1] = figures(6.0, 18.0)
    got = load_compare.compare(base, this)
    assert got["server_cpu_ms_per_request"]["paired_ratio"] == 1.0
    assert got["server_cpu_ms_per_request"]["median_ratio"] == 1.0


def test_a_round_without_figures_is_left_out_not_counted_as_zero() -> None:
    base = [figures(4.0, 12.0), {}, figures(4.0, 12.0)]  # a rate load.py skipped: no figures
    this = [figures(2.0, 6.0), figures(2.0, 6.0), figures(3.0, 6.0)]
    got = load_compare.compare(base, this)
    assert got["server_cpu_ms_per_request"]["paired_ratio"] == pytest.approx(0.625)
    assert got["server_cpu_ms_per_request"]["median_ratio"] == 0.5
    assert load_compare.side(base)["median"]["server_cpu_ms_per_request"] == 4.0


def test_rounds_must_pair_up() -> None:
    with pytest.raises(ValueError, match="2 base rounds and 1"):
        load_compare.compare([figures(1, 1), figures(1, 1)], [figures(1, 1)])


def test_summary_keys_each_rate_with_both_sides_and_the_ratios() -> None:
    results = {
        "base": {200.0: [figures(4.0, 12.0)], 800.0: [figures(5.0, 30.0, 790.0)]},
        "this": {200.0: [figures(2.0, 8.0)], 800.0: [figures(2.5, 15.0, 800.0)]},
        "floor": {200.0: [figures(0.4, 2.0)], 800.0: [figures(0.4, 3.0, 800.0)]},
    }
    got = load_compare.summary(results, [200.0, 800.0])
    assert set(got) == {"200", "800"}
    assert set(got["800"]) == {"base", "this", "floor", "this_over_base"}
    assert got["800"]["floor"]["median"]["p99_ms"] == 3.0
    assert got["800"]["this_over_base"]["p99_ms"]["paired_ratio"] == 0.5
    assert got["200"]["this_over_base"]["p99_ms"]["median_ratio"] == pytest.approx(0.6667)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rates", "fast"], "--rates: need numbers"),
        (["--rates", "0,200"], "need positive --rates"),
        (["--rounds", "0"], "--rounds >= 1"),
    ],
)
def test_bad_arguments_are_refused_naming_the_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
    message: str,
) -> None:  # fmt: skip
    base = ["load_compare.py", "--base-root", ".", "--base-bundle", "nowhere"]
    monkeypatch.setattr(sys, "argv", base + argv)
    with pytest.raises(SystemExit) as exit_:
        load_compare.main()
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
