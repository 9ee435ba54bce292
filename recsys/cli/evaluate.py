"""`recsys evaluate`: full-ranking evaluation of candidate models or of a trained bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from recsys.cli.common import app, metrics_table, print_json, user_errors


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option(help="Dataset directory (canonical form).")],
    model: Annotated[
        list[str] | None,
        typer.Option(help="Model name; repeat the option for several. Default: popular."),
    ] = None,
    split: Annotated[str, typer.Option(help="Which held-out target: test or valid.")] = "test",
    ties: Annotated[
        str,
        typer.Option(
            help="Tie rule: 'expected' (exact expectation over random tie-breaks) or 'index' "
            "(lower item index first, as a stable sort; how most published numbers were made)."
        ),
    ] = "expected",
    artifacts: Annotated[
        Path | None,
        typer.Option(help="A bundle from `recsys train`: evaluate its sources and the merge."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Leave-one-out, full-ranking evaluation of candidate models or of a trained bundle."""
    with user_errors():
        if artifacts is not None:
            _evaluate_bundle(data, artifacts, model, split, as_json)
            return
        from models.registry import make_model
        from recsys.data.contract import load_dataset
        from recsys.evaluation.protocol import evaluate_model

        if split not in ("test", "valid"):
            raise ValueError(f"unknown split {split!r}; valid splits are ['test', 'valid']")
        # Resolve names first so a typo fails before a large dataset is loaded.
        models = [make_model(name) for name in (model or ["popular"])]
        ds = load_dataset(data)
        results = [
            evaluate_model(ds, m, which=split, progress=not as_json, ties=ties)  # type: ignore[arg-type]
            for m in models
        ]
        if as_json:
            print_json(results[0] if len(results) == 1 else {"results": results})
        else:
            metrics_table(results, f"{ds.name} ({split}, {results[0]['users']} users)")


def _evaluate_bundle(
    data: Path, artifacts: Path, model: list[str] | None, split: str, as_json: bool
) -> None:
    from recsys.artifacts import load_bundle
    from recsys.data.contract import load_dataset
    from recsys.evaluation.retrieval import evaluate_bundle

    if model:
        raise ValueError("--model and --artifacts exclude each other: a bundle names its sources")
    if split not in ("test", "valid"):
        raise ValueError(f"unknown split {split!r}; valid splits are ['test', 'valid']")
    which: Literal["test", "valid"] = "test" if split == "test" else "valid"
    result = evaluate_bundle(
        load_dataset(data), load_bundle(artifacts), which, progress=not as_json
    )
    if as_json:
        print_json(result)
        return
    # each ranker over the merged list, and the order the bundle serves (chosen on validation)
    ranked = [
        (f"chosen: {result['pipeline_default']}" if n == "default" else f"pipeline: {n}", m)
        for n, m in result.get("pipeline", {}).items()
    ]
    rows = [
        {"model": n, "users": result["users"], "seconds": 0.0, **m}
        for n, m in [*result["sources"].items(), ("merged", result["merged"]), *ranked]
    ]
    metrics_table(rows, f"{result['dataset']} ({split}), bundle {result['bundle']}")
