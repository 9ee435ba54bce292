"""The load benchmark for two source trees side by side, each on its own bundle, as ratios.

    git archive f3c1295 | tar -x -C /tmp/base
    python benchmarks/load_compare.py --base-root /tmp/base \
        --base-bundle /tmp/base/var/load/bundle --rates 200,800 --rounds 3 --floor

A figure such as "2.5 ms of server CPU per request" depends on the machine as much as on the
code: on these shared 2-vCPU machines the same code took 1.9 to 3.8 ms within a day, and a plain
ASGI app answering fixed bytes (``benchmarks/server_floor.py``'s ``bare``) had a p99 of 1.7 ms
one day and 12 ms another. What does not move with the machine is the ratio of two trees
measured in turn, so this script runs ``benchmarks/load.py`` (this tree's client, so both sides
get the same load) against the base tree and this one, alternately, ``--rounds`` times: the
base first in odd rounds and second in even ones, so a drift of the machine's speed falls on
both. Each side serves its own ``--bundle``: an earlier tree may not read a bundle written by a
later one, so build the base's with its own code (its ``benchmarks/load.py`` builds one where
``--bundle`` has none; same shop size and seed).

``--floor`` adds, each round, the same load against the ``bare`` app: what the machine, uvicorn
and the client cost with no work behind them. A p99 that the floor itself exceeds that day
cannot be read as the code's.

Per rate, for each side: every round's server CPU per request, achieved rate, p50 and p99, and
their medians; then this tree over the base, both as the ratio of the medians and as the median
of the rounds' paired ratios (round r's figure over the base's in round r, which cancels the
drift between rounds). Prints one JSON document and writes ``--out``/``--name``.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ("server_cpu_ms_per_request", "achieved_rps", "p50_ms", "p99_ms")
FLOOR_APP = "benchmarks.server_floor:bare_app"


def load_run(
    root: Path, bundle: Path, rates: list[float], args: argparse.Namespace, name: str,
    app: str | None = None,
) -> dict[float, dict[str, Any]]:  # fmt: skip
    """One ``load.py`` run against ``root``'s server on ``bundle``: its recommend figures by
    offered rate."""
    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "load.py"), "--endpoints", "recommend",
        "--rates", ",".join(f"{r:g}" for r in rates), "--duration", str(args.duration),
        "--warmup", str(args.warmup), "--workers", str(args.workers),
        "--connections", str(args.connections), "--bundle", str(bundle),
        "--server-root", str(root), "--out", str(args.out / "runs"), "--name", name,
    ]  # fmt: skip
    if app is not None:
        cmd += ["--app", app]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    doc = json.loads((args.out / "runs" / f"{name}.json").read_text())
    runs = doc["endpoints"]["recommend"]["runs"]
    return {float(run["offered_rps"]): {k: run.get(k) for k in FIGURES} for run in runs}


def _median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(statistics.median(kept), 4) if kept else None


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return None if top is None or not bottom else round(top / bottom, 4)


def compare(
    base: list[dict[str, Any]], this: list[dict[str, Any]]
) -> dict[str, dict[str, float | None]]:
    """This tree over the base for each figure, from the two sides' rounds (in order, round r
    of each measured next to the other's): ``median_ratio`` is the ratio of the medians,
    ``paired_ratio`` the median of the rounds' own ratios."""
    if len(base) != len(this):
        raise ValueError(f"{len(base)} base rounds and {len(this)} of this tree: pair them")
    out: dict[str, dict[str, float | None]] = {}
    for figure in FIGURES:
        pairs = [_ratio(t.get(figure), b.get(figure)) for b, t in zip(base, this, strict=True)]
        out[figure] = {
            "median_ratio": _ratio(
                _median([t.get(figure) for t in this]), _median([b.get(figure) for b in base])
            ),
            "paired_ratio": _median(list(pairs)),
        }
    return out


def side(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's rounds at one rate and each figure's median over them."""
    return {
        "rounds": rounds,
        "median": {figure: _median([r.get(figure) for r in rounds]) for figure in FIGURES},
    }


def summary(results: dict[str, dict[float, list[dict[str, Any]]]], rates: list[float]) -> dict:
    """Per rate: each side's rounds and medians, and this tree over the base."""
    by_rate: dict[str, Any] = {}
    for rate in rates:
        entry = {name: side(per_rate[rate]) for name, per_rate in results.items()}
        entry["this_over_base"] = compare(results["base"][rate], results["this"][rate])
        by_rate[f"{rate:g}"] = entry
    return by_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-root", type=Path, required=True, help="the earlier source tree")
    parser.add_argument("--base-bundle", type=Path, required=True, help="a bundle it can serve")
    parser.add_argument("--root", type=Path, default=ROOT, help="this tree (default: here)")
    parser.add_argument(
        "--bundle", type=Path, default=ROOT / "var" / "bench" / "load" / "bundle",
        help="this tree's bundle (built by load.py where missing)",
    )  # fmt: skip
    parser.add_argument("--rates", default="200,800", help="offered requests/s")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--floor", action="store_true", help="add the bare app each round")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compare")
    parser.add_argument("--name", default="load_compare")
    args = parser.parse_args()
    try:
        rates = sorted(float(r) for r in args.rates.split(",") if r.strip())
    except ValueError:
        parser.error(f"--rates: need numbers separated by commas, got {args.rates!r}")
    if not rates or min(rates) <= 0 or args.rounds < 1:
        parser.error(f"need positive --rates and --rounds >= 1, got {args.rates!r}, {args.rounds}")
    # name -> (source tree, bundle, app factory; None: the tree's own app)
    sides: dict[str, tuple[Path, Path, str | None]] = {
        "base": (args.base_root, args.base_bundle, None),
        "this": (args.root, args.bundle, None),
    }
    if args.floor:  # the bare app needs a bundle only for the load's request bodies
        sides["floor"] = (args.root, args.bundle, FLOOR_APP)
    results: dict[str, dict[float, list[dict[str, Any]]]] = {
        n: {r: [] for r in rates} for n in sides
    }
    for number in range(1, args.rounds + 1):
        order = ["base", "this"] if number % 2 else ["this", "base"]
        for name in order + [n for n in sides if n not in order]:
            print(f"[compare] round {number}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            root, bundle, app = sides[name]
            got = load_run(root, bundle, rates, args, f"{args.name}-{name}-{number}", app)
            for rate in rates:
                results[name][rate].append(got.get(rate, {}))
    doc = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rates": summary(results, rates),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps(doc, indent=2))


if __name__ == "__main__":
    main()
