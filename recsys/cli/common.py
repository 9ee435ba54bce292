"""The `recsys` app object and what every command shares: one-line errors, JSON, tables.

Commands live in their own modules and register on :data:`app`; ``recsys.cli`` imports them
all, so this module imports none of them (no cycle)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
