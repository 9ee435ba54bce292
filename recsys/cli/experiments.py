"""`recsys ope`, `recsys recommend` (batch export) and `recsys simulate` (a logged replay on the
synthetic shop, with its truth)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.cli.common import app, print_json, user_errors


@app.command()
def ope(
    decisions: Annotated[Path, typer.Option(help="Decision log (JSON lines, as served).")],
    events: Annotated[
        Path,
        typer.Option(help="Event log: the served SQLite file, or JSON lines / parquet."),
    ],
    candidate: Annotated[
        list[Path] | None,
        typer.Option(
            help="A candidate policy's lists (parquet: request_id, position, item_id); "
            "repeat for several."
        ),
    ] = None,
    candidate_bundle: Annotated[
        list[Path] | None,
        typer.Option(
            help="A candidate bundle: its greedy recommend list for each logged "
            "shopper is evaluated; repeat for several."
        ),
    ] = None,
    reward: Annotated[str, typer.Option(help="click, conversion or value.")] = "click",
    interval: Annotated[str, typer.Option(help="normal or bootstrap.")] = "normal",
    level: Annotated[float, typer.Option(help="Confidence level of the intervals.")] = 0.95,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """IPS, SNIPS and doubly-robust estimates (with intervals) of each arm's greedy policy and
    of candidate policies, from the logged propensities; plus each arm's logged value."""
    with user_errors():
        import pandas as pd

        from recsys.experiments.attribution import (
            decisions_frame,
            join_outcomes,
            read_decisions,
            read_events,
        )
        from recsys.experiments.ope import evaluate_policy, per_arm

        if interval not in ("normal", "bootstrap"):
            raise ValueError(f"unknown interval {interval!r}; valid: ['normal', 'bootstrap']")
        records = list(read_decisions(decisions))
        outcomes = join_outcomes(decisions_frame(records), read_events(events))
        if outcomes.empty:
            raise ValueError(f"{decisions} holds no shown items")
        doc: dict[str, Any] = {
            "reward": reward,
            "requests": int(outcomes["request_id"].nunique()),
            "arms": per_arm(outcomes, reward, level, interval),  # type: ignore[arg-type]
            "candidates": {},
        }
        targets: dict[str, pd.DataFrame] = {str(p): pd.read_parquet(p) for p in candidate or []}
        shadows = decisions_frame(records, shadow=True)
        for arm, lists in shadows.groupby("arm", sort=True):  # a shadow arm is a candidate
            targets[f"shadow arm {arm}"] = lists[["request_id", "position", "item_id"]]
        for path in candidate_bundle or []:
            targets[str(path)] = _bundle_targets(path, outcomes)
        for name, target in targets.items():
            est = evaluate_policy(outcomes, target, reward, level, interval)  # type: ignore[arg-type]
            doc["candidates"][name] = {k: e.as_dict() for k, e in est.items()}
        if as_json:
            print_json(doc)
        else:
            _table(doc, level)


def _bundle_targets(path: Path, outcomes: Any) -> Any:
    from recsys.artifacts import load_bundle
    from recsys.experiments.export import export_frame, iter_lists, targets_for

    bundle = load_bundle(path)
    k = int(outcomes["position"].max()) + 1
    users = outcomes["user_id"].drop_duplicates().tolist()
    lists = export_frame(iter_lists(bundle, users, k), bundle.version)
    return targets_for(outcomes, lists)


def _table(doc: dict[str, Any], level: float) -> None:
    from rich.console import Console
    from rich.table import Table

    pct = f"{level:.0%}"
    table = Table(title=f"{doc['reward']} per request, {doc['requests']} requests ({pct} CI)")
    for column in ("policy", "estimator", "value", "low", "high", "matched", "max weight"):
        table.add_column(column, justify="left" if column in ("policy", "estimator") else "right")
    for arm in doc["arms"]:
        logged = arm["logged"]
        name = f"arm {arm['arm']} ({arm['model_version']})"
        table.add_row(
            name, "logged", *(f"{logged[k]:.4f}" for k in ("value", "low", "high")), "1.000", "1"
        )
        _rows(table, f"arm {arm['arm']} greedy", arm["greedy"])
    for name, estimates in doc["candidates"].items():
        _rows(table, name, estimates)
    Console(width=max(Console().width, 120)).print(table)


def _rows(table: Any, name: str, estimates: dict[str, dict[str, Any]]) -> None:
    for est, e in estimates.items():
        table.add_row(
            name,
            est,
            f"{e['value']:.4f}",
            f"{e['low']:.4f}",
            f"{e['high']:.4f}",
            f"{e['matched']:.3f}",
            f"{e['max_weight']:.1f}",
        )


@app.command()
def recommend(
    bundle: Annotated[Path, typer.Option(help="Artifact bundle (from `recsys train`).")],
    users: Annotated[
        str,
        typer.Option(
            help="'all' (every shopper in the bundle) or a file of user ids: text, one "
            "a line, or CSV/parquet with a user_id column."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Parquet file to write.")],
    k: Annotated[int, typer.Option(min=1, max=500, help="Items per shopper.")] = 50,
    ranker: Annotated[str | None, typer.Option(help="Ranker; default: the bundle's.")] = None,
    decision_config: Annotated[
        Path | None, typer.Option(help="Decision rules (YAML/JSON), as served.")
    ] = None,
    events: Annotated[
        Path | None, typer.Option(help="SQLite event log: include events since the snapshot.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Write every shopper's top k (user_id, position, item_id, score, model_version) through
    the same recommend pipeline the API serves, exploration off."""
    with user_errors():
        from models.threads import pin_compute_threads
        from recsys.artifacts import load_bundle
        from recsys.decision import load_decision_config
        from recsys.events import EventLog
        from recsys.experiments import export

        loaded = load_bundle(bundle)
        # one request at a time, as a serving worker runs them: idle BLAS/OpenMP threads
        # would spin on the cores (models.threads)
        pin_compute_threads(1)
        rules = load_decision_config(decision_config)
        wanted = export.read_users(users, loaded)
        log = EventLog(events) if events is not None else None
        started = time.perf_counter()
        rows = export.iter_lists(
            loaded, export.progress(wanted, progress, "recommend"), k, ranker, rules, log
        )
        frame = export.export_frame(rows, loaded.version)
        export.write_parquet(frame, out)
        seconds = time.perf_counter() - started
        typer.echo(
            f"wrote {len(frame)} rows for {len(wanted)} users to {out} in {seconds:.1f} s "
            f"({len(wanted) / max(seconds, 1e-9):.0f} users/s)",
            err=True,
        )


@app.command()
def simulate(
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for decisions.jsonl, events.jsonl, targets/*.parquet and truth.json."
        ),
    ],
    requests: Annotated[int, typer.Option(min=1, help="Requests to log.")] = 20_000,
    users: Annotated[int, typer.Option(min=1, help="Shoppers in the synthetic shop.")] = 600,
    items: Annotated[int, typer.Option(min=1, help="Items in the synthetic shop.")] = 200,
    epsilon: Annotated[float, typer.Option(min=0.0, max=1.0, help="Exploration rate.")] = 0.3,
    pool: Annotated[int, typer.Option(min=1, help="Exploration pool.")] = 10,
    k: Annotated[int, typer.Option(min=1, help="Items per list.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the shop and the replay.")] = 0,
) -> None:
    """Log a replay on the synthetic shop (clicks from the generator's truth), with the lists
    of a known better and worse policy and their true online values (truth.json)."""
    with user_errors():
        from recsys.data.synth import generate
        from recsys.experiments.simulate import (
            POLICIES,
            ShopTruth,
            replay,
            true_value,
            write_replay,
        )

        truth = ShopTruth.of(generate(users=users, items=items, seed=seed))
        done = replay(truth, requests, k=k, epsilon=epsilon, pool=pool, seed=seed + 1)
        paths = write_replay(done, out)
        values = {
            reward: {p: true_value(truth, p, k=k, pool=pool, reward=reward) for p in POLICIES}
            for reward in ("click", "conversion", "value")
        }
        (out / "truth.json").write_text(json.dumps(values, indent=2) + "\n")
        print_json({"files": paths, "true_value": values})
