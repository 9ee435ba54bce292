"""`recsys data`: make, import and describe datasets in canonical form."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.cli.common import print_json, user_errors

data_app = typer.Typer(help="Make, import and describe datasets.", no_args_is_help=True)

FORMATS = ("ml100k", "s3rec", "minionerec", "csv")


@data_app.command()
def synth(
    out: Annotated[Path, typer.Option(help="Output dataset directory.")],
    users: Annotated[int, typer.Option(min=10, help="Number of shoppers.")] = 10_000,
    items: Annotated[int, typer.Option(min=20, help="Catalog size.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same dataset.")] = 0,
) -> None:
    """Generate the realistic synthetic shop (catalog, sessions, queries with labels)."""
    with user_errors():
        from recsys.data.synth import generate

        ds = generate(users=users, items=items, seed=seed, progress=True)
        path = ds.save(out)
        typer.echo(f"wrote {path}: {ds.counts()}")


@data_app.command("import")
def import_(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help=f"One of {', '.join(FORMATS)}.")],
    src: Annotated[Path, typer.Argument(help="Source file or folder.")],
    out: Annotated[Path, typer.Option(help="Output dataset directory.")],
    user_col: Annotated[str, typer.Option(help="csv: user id column.")] = "user_id",
    item_col: Annotated[str, typer.Option(help="csv: item id column.")] = "item_id",
    ts_col: Annotated[
        str | None, typer.Option(help="csv: timestamp column (ints or dates); else row order.")
    ] = None,
    event_col: Annotated[str | None, typer.Option(help="csv: event type column.")] = None,
    event: Annotated[
        str | None,
        typer.Option(
            help="csv: one event for every row (default: the event column, else purchase)."
        ),
    ] = None,
    event_map: Annotated[
        str | None, typer.Option(help="csv: rename source events, e.g. 'buy=purchase,pv=view'.")
    ] = None,
    sep: Annotated[
        str | None, typer.Option(help="csv: field separator (default by extension).")
    ] = None,
    value_col: Annotated[str | None, typer.Option(help="csv: numeric value column.")] = None,
    query_col: Annotated[str | None, typer.Option(help="csv: search query column.")] = None,
    session_col: Annotated[str | None, typer.Option(help="csv: session id column.")] = None,
    items: Annotated[Path | None, typer.Option(help="csv: items file (CSV or parquet).")] = None,
    item_id_col: Annotated[str, typer.Option(help="csv: item id column of the items file.")] = (
        "item_id"
    ),
    title_col: Annotated[str | None, typer.Option(help="csv: title column.")] = None,
    brand_col: Annotated[str | None, typer.Option(help="csv: brand column.")] = None,
    category_col: Annotated[str | None, typer.Option(help="csv: category column.")] = None,
    price_col: Annotated[str | None, typer.Option(help="csv: price column.")] = None,
    description_col: Annotated[str | None, typer.Option(help="csv: description column.")] = None,
) -> None:
    """Import a real dataset (RecBole atomic, S3-Rec, MiniOneRec, generic CSV/parquet)."""
    with user_errors():
        from recsys.data.importers import import_dataset

        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; valid formats are {list(FORMATS)}")
        if not src.exists():
            raise FileNotFoundError(f"{src}: no such file or folder")
        options: dict[str, Any] = {}
        if fmt == "csv":
            given = {
                "user_col": user_col,
                "item_col": item_col,
                "ts_col": ts_col,
                "event_col": event_col,
                "event": event,
                "event_map": event_map,
                "sep": sep,
                "value_col": value_col,
                "query_col": query_col,
                "session_col": session_col,
                "items": items,
                "item_id_col": item_id_col,
                "title_col": title_col,
                "brand_col": brand_col,
                "category_col": category_col,
                "price_col": price_col,
                "description_col": description_col,
            }
            options = {k: v for k, v in given.items() if v is not None}
        report = import_dataset(fmt, src, **options)
        path = report.dataset.save(out)
        counts = report.dataset.counts()
        typer.echo(
            f"wrote {path}: {counts['users']:,} users, {counts['items']:,} items, "
            f"{counts['interactions']:,} interactions"
        )
        for reason, n in report.dropped.items():
            typer.secho(f"dropped {n:,} rows: {reason}", fg=typer.colors.YELLOW)
        if not report.dropped:
            typer.echo("dropped 0 rows")
        for note in report.notes:
            typer.echo(f"note: {note}")


@data_app.command()
def stats(
    data: Annotated[Path, typer.Argument(help="Dataset directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Counts, sparsity, event mix and the sequence-length distribution of a dataset."""
    with user_errors():
        from recsys.data.contract import load_dataset
        from recsys.data.stats import dataset_stats

        result = dataset_stats(load_dataset(data))
        if as_json:
            print_json(result)
            return
        from rich.console import Console
        from rich.pretty import Pretty

        Console().print(Pretty(result))
