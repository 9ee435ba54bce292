"""Generic CSV/parquet import with a column mapping (registered as format "csv").

Every ``*_col`` option names a source column. An optional mapping left at ``None`` falls back to
the canonical column name when the file has it, so a file already in canonical shape imports
without options, while a missing column that was asked for by name is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.contract import EVENTS, DatasetError
from recsys.data.importers.base import (
    ImportReport,
    add_placeholder_items,
    count_drop,
    drop_exact_duplicates,
    finish,
    note_ts_ties,
    require_file,
)

PARQUET_SUFFIXES = (".parquet", ".pq")
EPOCH = pd.Timestamp(0, tz="UTC")


class _Table:
    """A source table plus how to name its rows in messages (CSV lines or parquet rows)."""

    def __init__(self, path: Path, sep: str | None) -> None:
        require_file(path, "table")
        self.path, self.name = path, str(path)
        self.parquet = path.suffix.lower() in PARQUET_SUFFIXES
        try:
            if self.parquet:
                self.frame = pd.read_parquet(path)
            else:
                tab = path.name.lower().removesuffix(".gz").endswith((".tsv", ".tab"))
                # Everything as text with only empty cells missing: ids like "007" or "NA" stay.
                self.frame = pd.read_csv(
                    path,
                    sep=sep or ("\t" if tab else ","),
                    dtype=str,
                    keep_default_na=False,
                    na_values=[""],
                )
        except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
            raise DatasetError(self.name, f"cannot be read ({exc})") from exc
        self.frame = self.frame.reset_index(drop=True)

    def where(self, row: int) -> str:
        return f"row {row}" if self.parquet else f"line {row + 2}"  # CSV header is line 1

    def column(self, option: str, asked: str | None, canonical: str | None) -> str | None:
        """Resolve a column option: an explicit name must exist; None falls back to canonical."""
        if asked is not None:
            if asked not in self.frame.columns:
                raise DatasetError(
                    self.name,
                    f"missing column (from {option}={asked!r}); found {list(self.frame.columns)}",
                    column=asked,
                )
            return asked
        return canonical if canonical in self.frame.columns else None

    def fail(self, rows: pd.Series, column: str, message: str) -> None:
        """Raise for the first True in ``rows`` (aligned on the frame index), naming its value."""
        if rows.any():
            row = int(rows.index[rows.to_numpy()][0])
            value = self.frame[column].iloc[row]
            shown = "(empty)" if pd.isna(value) else repr(value)
            raise DatasetError(
                self.name,
                f"{self.where(row)}: {message}: {shown} ({int(rows.sum())} such rows in all)",
                column=column,
            )


def _ids(col: pd.Series) -> pd.Series:
    """Ids as stripped strings, None when missing; integral floats lose their '.0'."""
    if pd.api.types.is_float_dtype(col) and (col.dropna() % 1 == 0).all():
        col = col.astype("Int64")
    return pd.Series(
        [None if pd.isna(v) else (str(v).strip() or None) for v in col],
        index=col.index,
        dtype=object,
    )


def _text(col: pd.Series) -> pd.Series:
    return pd.Series([None if pd.isna(v) else str(v) for v in col], index=col.index, dtype=object)


def _numbers(t: _Table, column: str, rows: pd.Index) -> pd.Series:
    raw = t.frame.loc[rows, column]
    values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
    t.fail(values.isna() & raw.notna(), column, "not a number")
    return values


def _unix_seconds(t: _Table, column: str, rows: pd.Index) -> pd.Series:
    col = t.frame.loc[rows, column]
    t.fail(col.isna(), column, "missing timestamp")
    if pd.api.types.is_bool_dtype(col):
        raise DatasetError(t.name, "timestamps must be integers or datetimes, got booleans", column)
    if pd.api.types.is_datetime64_any_dtype(col):
        stamps = col.dt.tz_localize("UTC") if col.dt.tz is None else col.dt.tz_convert("UTC")
        return ((stamps - EPOCH) // pd.Timedelta(seconds=1)).astype(np.int64)
    if pd.api.types.is_integer_dtype(col):
        return col.astype(np.int64)
    # Numbers and datetime strings may be mixed (e.g. a log that changed format over time).
    numbers = pd.to_numeric(col, errors="coerce")
    is_number = numbers.notna()
    t.fail(is_number & (numbers % 1 != 0), column, "timestamp is not a whole number of seconds")
    out = numbers.where(is_number, 0).astype(np.int64)
    if is_number.all():
        return out
    text = col[~is_number].astype(str).str.strip()
    stamps = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
    retry = stamps.isna()
    if retry.any():  # per-value parsing is slow, so only for what ISO 8601 did not cover
        stamps[retry] = pd.to_datetime(text[retry], errors="coerce", utc=True, format="mixed")
    t.fail(stamps.isna(), column, "not an integer timestamp or a datetime")
    out[~is_number] = ((stamps - EPOCH) // pd.Timedelta(seconds=1)).astype(np.int64)
    return out


def _event_map(event_map: Mapping[str, str] | str | None) -> dict[str, str]:
    """Accept a mapping or the CLI-friendly form ``"raw=event,raw2=event2"``."""
    if event_map is None:
        return {}
    if isinstance(event_map, str):
        pairs = [p.split("=", 1) for p in event_map.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError(f"event_map {event_map!r} must look like 'raw=event,raw2=event2'")
        event_map = {k.strip(): v.strip() for k, v in pairs}
    bad = sorted(v for v in event_map.values() if v not in EVENTS)
    if bad:
        raise ValueError(f"event_map targets {bad} are not events; valid are {list(EVENTS)}")
    return dict(event_map)


def import_csv(
    src: str | Path,
    *,
    user_col: str = "user_id",
    item_col: str = "item_id",
    ts_col: str | None = None,
    event_col: str | None = None,
    event: str | None = None,
    event_map: Mapping[str, str] | str | None = None,
    value_col: str | None = None,
    query_col: str | None = None,
    session_col: str | None = None,
    items: str | Path | None = None,
    item_id_col: str | None = None,
    title_col: str | None = None,
    brand_col: str | None = None,
    category_col: str | None = None,
    price_col: str | None = None,
    description_col: str | None = None,
    sep: str | None = None,
    name: str | None = None,
    license: str = "see source",
) -> ImportReport:
    """Import an interactions table (``.csv``/``.tsv``/``.parquet``) and an optional items table.

    Without ``ts_col`` (and no ``ts`` column) the row order within each user becomes ``ts``.
    Without ``event_col`` (and no ``event`` column) every row gets ``event`` (default
    "purchase"); passing ``event`` explicitly always wins over an ``event`` column.
    """
    path = Path(src)
    t = _Table(path, sep)
    dropped: dict[str, int] = {}
    notes: list[str] = []
    for option, col in (("user_col", user_col), ("item_col", item_col)):
        t.column(option, col, None)
    ts_c = t.column("ts_col", ts_col, "ts")
    event_c = t.column("event_col", event_col, None if event is not None else "event")
    value_c = t.column("value_col", value_col, "value")
    query_c = t.column("query_col", query_col, "query")
    session_c = t.column("session_col", session_col, "session_id")
    if event is not None and event not in EVENTS:
        raise ValueError(f"event {event!r} is not one of {list(EVENTS)}")

    users, item_ids = _ids(t.frame[user_col]), _ids(t.frame[item_col])
    count_drop(dropped, "missing user id", int(users.isna().sum()))
    count_drop(dropped, "missing item id", int((item_ids.isna() & users.notna()).sum()))
    rows = t.frame.index[(users.notna() & item_ids.notna()).to_numpy()]
    inter = pd.DataFrame({"user_id": users.loc[rows], "item_id": item_ids.loc[rows]})
    if ts_c is not None:
        inter["ts"] = _unix_seconds(t, ts_c, rows)
        if len(inter) and float(inter["ts"].median()) > 1e11:
            notes.append(f"{ts_c} values look like milliseconds; they were kept as given")
    else:
        inter["ts"] = inter.groupby("user_id", sort=False).cumcount().astype(np.int64)
        notes.append("no timestamp column: ts is the row order within each user")
    if event_c is not None:
        raw = t.frame.loc[rows, event_c]
        t.fail(raw.isna(), event_c, "missing event")
        mapping = _event_map(event_map)
        mapped = raw.astype(str).str.strip().map(lambda v: mapping.get(v, v))
        unknown = ~mapped.isin(EVENTS)
        if unknown.any():
            values = sorted(set(raw[unknown].astype(str)))[:10]
            t.fail(
                unknown,
                event_c,
                f"unknown event values {values}; valid are {list(EVENTS)} "
                "(pass event_map to translate them); first one",
            )
        inter["event"] = mapped.astype(object)
    else:
        inter["event"] = event or "purchase"
    if value_c is not None:
        inter["value"] = _numbers(t, value_c, rows)
    for canonical, text_c in (("query", query_c), ("session_id", session_c)):
        if text_c is not None:
            inter[canonical] = _text(t.frame.loc[rows, text_c])
    inter = drop_exact_duplicates(inter, dropped)
    note_ts_ties(inter, notes)

    if items is not None:
        catalogue = _items(
            _Table(Path(items), sep),
            dropped,
            notes,
            {
                "item_id": item_id_col,
                "title": title_col,
                "brand": brand_col,
                "category": category_col,
                "price": price_col,
                "description": description_col,
            },
            item_col,
        )
        source = Path(items).name
    else:
        catalogue = pd.DataFrame({"item_id": pd.Series([], dtype=object), "title": []})
        source = "the items table (none given: pass items=)"
    catalogue = add_placeholder_items(inter, catalogue, notes, source)
    return finish(
        fmt="csv",
        src=path,
        name=name or path.name.split(".")[0],
        license=license,
        interactions=inter,
        items=catalogue,
        dropped=dropped,
        notes=notes,
        extra_meta={"items_source": None if items is None else str(items)},
    )


def _items(
    t: _Table,
    dropped: dict[str, int],
    notes: list[str],
    asked: dict[str, str | None],
    item_col: str,
) -> pd.DataFrame:
    id_fallback = item_col if item_col in t.frame.columns else "item_id"
    id_c = t.column("item_id_col", asked["item_id"], id_fallback)
    title_c = t.column("title_col", asked["title"], "title")
    if id_c is None or title_c is None:
        missing, option = ("item_id", "item_id_col") if id_c is None else ("title", "title_col")
        raise DatasetError(
            t.name,
            f"missing column; pass {option}= to name it; found {list(t.frame.columns)}",
            column=missing,
        )
    ids = _ids(t.frame[id_c])
    count_drop(dropped, "missing item id in items table", int(ids.isna().sum()))
    dup = ids.duplicated() & ids.notna()
    count_drop(dropped, "duplicate item id in items table (first kept)", int(dup.sum()))
    rows = t.frame.index[(ids.notna() & ~dup).to_numpy()]
    out = pd.DataFrame({"item_id": ids.loc[rows]})
    titles = _ids(t.frame.loc[rows, title_c])  # stripped text, None when blank
    untitled = titles.isna()
    if untitled.any():
        notes.append(
            f"{int(untitled.sum())} items in {t.path.name} have no title; used 'item <id>'"
        )
    out["title"] = titles.where(~untitled, "item " + out["item_id"].astype(str))
    for canonical in ("brand", "category", "description", "price"):
        col = t.column(f"{canonical}_col", asked[canonical], canonical)
        if col is None:
            continue
        out[canonical] = (
            _numbers(t, col, rows) if canonical == "price" else _text(t.frame.loc[rows, col])
        )
    return out
