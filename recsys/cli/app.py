"""Top-level commands: `recsys evaluate`, `recsys demo`, and the `recsys data` group."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

app = typer.Typer(
    name="recsys",
    help="Recommendation and real-time decision engine for e-commerce.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn bad input into one clear line on stderr and exit code 2, never a traceback."""
    from recsys.data.contract import DatasetError

    try:
        yield
    except (DatasetError, ValueError, FileNotFoundError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def metrics_table(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from recsys.evaluation.metrics import metric_keys

    keys = metric_keys((10, 20))
    table = Table(title=title)
    console = Console(width=max(Console().width, 140))
    for column in ["model", *keys, "users", "seconds"]:
        table.add_column(column, justify="left" if column == "model" else "right")
    for row in rows:
        table.add_row(
            str(row["model"]),
            *[f"{row[k]:.5f}" for k in keys],
            str(row["users"]),
            f"{row['seconds']:.2f}",
        )
    console.print(table)


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
    rows = [
        {"model": n, "users": result["users"], "seconds": 0.0, **m}
        for n, m in [*result["sources"].items(), ("merged", result["merged"])]
    ]
    metrics_table(rows, f"{result['dataset']} ({split}), bundle {result['bundle']}")


def _register_groups() -> None:
    from recsys.cli import demo, serve, train  # noqa: F401 - they register their commands
    from recsys.cli.data import data_app

    app.add_typer(data_app, name="data")


_register_groups()
