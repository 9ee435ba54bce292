"""`recsys demo`: the main job on the embedded default, end to end on one CPU machine."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recsys.cli.common import _jsonable, app, metrics_table, user_errors

if TYPE_CHECKING:
    from recsys.artifacts import TrainConfig
    from recsys.data.contract import Dataset

FAST_SOURCES = ("popular", "covisit", "als", "text", "attributes")


def demo_config(sources: tuple[str, ...], seed: int) -> TrainConfig:
    """The demo's training: ``sources``, and rankers fit on a capped number of rows
    (``recsys.ranking.train.DEMO_MAX_ROWS``) so that the first ``recsys serve`` is ready sooner."""
    from recsys.artifacts import TrainConfig
    from recsys.ranking.train import DEMO_MAX_ROWS, RankerTrainConfig

    return TrainConfig(
        sources=sources, seed=seed, ranking=RankerTrainConfig(max_rows=DEMO_MAX_ROWS)
    )


def synthetic_shop(
    data_dir: Path, users: int, items: int, seed: int, say: Callable[[str], object] = print
) -> Dataset:
    """The synthetic shop at ``data_dir``, generated unless one with these settings is there."""
    from recsys.data.contract import load_dataset
    from recsys.data.synth import generate

    wanted = {"seed": seed, "users": users, "items": items}
    meta_file = data_dir / "meta.json"
    existing = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    if not all(existing.get(k) == v for k, v in wanted.items()):
        say(f"generating the synthetic shop: {users:,} users, {items:,} items")
        generate(users=users, items=items, seed=seed, progress=True).save(data_dir)
    ds = load_dataset(data_dir)
    say(f"dataset {data_dir}: {ds.counts()}")
    return ds


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes its data and bundle.")] = Path(
        "var/demo"
    ),
    users: Annotated[int, typer.Option(min=10, help="Synthetic shop users.")] = 20_000,
    items: Annotated[int, typer.Option(min=20, help="Synthetic shop items.")] = 4_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    sasrec: Annotated[
        bool, typer.Option(help="Also train SASRec (minutes on a CPU; the others take seconds).")
    ] = False,
) -> None:
    """Build the synthetic shop, train and evaluate every candidate source, show one user."""
    with user_errors():
        from rich.console import Console
        from rich.table import Table

        from recsys.artifacts import load_bundle, train_bundle
        from recsys.evaluation.retrieval import evaluate_bundle
        from recsys.pipelines import ranker_name, recommend_pipeline

        console = Console(width=140)
        ds = synthetic_shop(out / "synthetic-shop", users, items, seed, console.print)

        sources = (*FAST_SOURCES, "sasrec") if sasrec else FAST_SOURCES
        config = demo_config(sources, seed)
        bundle = load_bundle(train_bundle(ds, out / "bundle", config, progress=True))
        console.print(f"bundle {bundle.version} written to {bundle.path}")
        result = evaluate_bundle(ds, bundle, progress=True)
        rows = [
            {"model": name, "users": result["users"], "seconds": 0.0, **metrics}
            for name, metrics in [
                *result["sources"].items(),
                ("merged", result["merged"]),
                *((f"pipeline: {r}", m) for r, m in result.get("pipeline", {}).items()),
            ]
        ]
        metrics_table(rows, f"{ds.name}: leave-one-out test, full ranking")
        recall = {n: round(r["candidate_recall@500"], 4) for n, r in result["sources"].items()}
        console.print(f"candidate recall@500 per source: {recall}")
        console.print(
            f"merged candidate recall@500: {result['merged']['candidate_recall@500']:.4f}"
        )

        user = str(bundle.user_ids[0])
        history = bundle.sequences.user(0)
        run = recommend_pipeline(bundle, ranker_name(bundle, None)).run({"user_id": user})
        merged = run.state["candidates"]
        ranked = run.state.get("ranked")
        order = ranked.order[0] if ranked is not None else range(merged.ids.shape[1])
        catalog = ds.items.set_index("item_id")
        table = Table(
            title=f"user {user}: last items {[str(bundle.item_ids[i]) for i in history[-3:]]}"
        )
        for column in ("rank", "item", "title", "category", "ranker score", "merged slot",
                       "found by"):  # fmt: skip
            table.add_column(column)
        for rank, slot in enumerate(list(order)[:10]):
            item_id = str(bundle.item_ids[merged.ids[0, slot]])
            row = catalog.loc[item_id]
            score = f"{ranked.scores[0, rank]:.3f}" if ranked is not None else ""
            table.add_row(
                str(rank + 1), item_id, str(row["title"]), str(row.get("category", "")), score,
                str(int(slot) + 1), ", ".join(merged.found_by(0, int(slot))),
            )  # fmt: skip
        console.print(table)
        trace = {name: round(ms, 2) for name, ms in run.trace}
        console.print(trace, "ms per stage;", {k: round(v, 2) for k, v in
                      run.state["source_timings"].items()}, "ms per source")  # fmt: skip
        (out / "results.json").write_text(json.dumps(result, indent=2, default=_jsonable))
        console.print(f"results written to {out / 'results.json'}")
