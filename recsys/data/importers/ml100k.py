"""RecBole atomic files (``.inter``, ``.item``, ``.user``), as MovieLens-100k is distributed.

Atomic files are tab-separated with a ``name:type`` header (types ``token``, ``token_seq``,
``float``, ``float_seq``). The header is parsed generically, so column order and extra columns
do not matter; only the fields the contract needs are mapped, the rest of ``.item`` goes into
``attributes``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.contract import EVENTS, DatasetError
from recsys.data.importers.base import (
    RESEARCH_LICENSE,
    ImportReport,
    add_placeholder_items,
    count_drop,
    drop_exact_duplicates,
    finish,
    note_ts_ties,
    read_text,
    require_file,
)

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
TITLE_FIELDS = ("movie_title", "title", "name")
YEAR_FIELDS = ("release_year", "year")
GENRE_FIELDS = ("class", "genre", "genres", "categories")
CANONICAL = ("user_id", "item_id", "ts", "event", "value")


@dataclass
class AtomicFile:
    path: Path
    frame: pd.DataFrame  # every column as str, exactly as in the file
    types: dict[str, str]
    lines: np.ndarray  # 1-based line number of each row, for error messages

    def where(self, row: int) -> str:
        return f"line {int(self.lines[row])}"


def read_atomic(path: Path, dropped: dict[str, int]) -> AtomicFile:
    """Read an atomic file; a line with the wrong number of fields is an error, not a drop."""
    text = read_text(require_file(path, f"RecBole {path.suffix} file"))
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DatasetError(str(path), "is empty; expected a 'name:type' header line")
    names, types = [], {}
    for field in lines[0].split("\t"):
        name, sep, kind = field.strip().partition(":")
        if not sep or not name:
            raise DatasetError(
                str(path), f"line 1: header field {field!r} is not 'name:type'", column=field
            )
        if kind not in ATOMIC_TYPES:
            raise DatasetError(
                str(path), f"line 1: unknown type {kind!r}; valid are {list(ATOMIC_TYPES)}", name
            )
        if name in types:
            raise DatasetError(str(path), "line 1: duplicated header field", column=name)
        names.append(name)
        types[name] = kind
    rows, numbers = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            count_drop(dropped, f"empty line in {path.name}", 1)
            continue
        parts = line.split("\t")
        if len(parts) != len(names):
            raise DatasetError(
                str(path),
                f"line {number}: expected {len(names)} tab-separated fields {names}, "
                f"found {len(parts)}: {line[:80]!r}",
            )
        rows.append(parts)
        numbers.append(number)
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    return AtomicFile(path, frame, types, np.asarray(numbers, dtype=np.int64))


def _float_column(af: AtomicFile, column: str) -> pd.Series:
    raw = af.frame[column].str.strip()
    values = pd.to_numeric(raw.where(raw != "", None), errors="coerce").astype(np.float64)
    bad = values.isna() & (raw != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(
            str(af.path), f"{af.where(row)}: not a number: {raw.iloc[row]!r}", column=column
        )
    return values


def _timestamp_column(af: AtomicFile, column: str) -> pd.Series:
    values = _float_column(af, column)
    bad = values.isna() | (values != np.floor(values))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DatasetError(
            str(af.path),
            f"{af.where(row)}: timestamp must be whole unix seconds, "
            f"got {af.frame[column].iloc[row]!r}",
            column=column,
        )
    return values.astype(np.int64)


def _find_inter(src: Path, name: str | None) -> Path:
    if src.is_file():
        return src
    if not src.is_dir():
        raise DatasetError(str(src), "not found; expected a folder holding <name>.inter")
    if name is not None:
        return require_file(src / f"{name}.inter", "RecBole .inter file")
    found = sorted(src.glob("*.inter"))
    if len(found) != 1:
        what = "no .inter file" if not found else f"several .inter files {[p.name for p in found]}"
        raise DatasetError(str(src), f"{what}; pass name= to pick <name>.inter")
    return found[0]


def import_ml100k(
    src: str | Path,
    *,
    name: str | None = None,
    event: str | None = None,
    category_root: str | None = None,
    license: str = RESEARCH_LICENSE,
) -> ImportReport:
    """Import RecBole atomic files from a folder (or a ``.inter`` path).

    ``event`` defaults to "rating" when the file has a rating column, else "purchase".
    ``category_root`` prefixes the first genre ("Movies > Comedy"); it defaults to "Movies" when
    the item file has a ``movie_title`` field.
    """
    inter_path = _find_inter(Path(src), name)
    stem = inter_path.stem
    dropped: dict[str, int] = {}
    notes: list[str] = []
    af = read_atomic(inter_path, dropped)
    for column in ("user_id", "item_id"):
        if column not in af.types:
            raise DatasetError(
                str(inter_path), f"missing column; found {list(af.types)}", column=column
            )
    if event is not None and event not in EVENTS:
        raise DatasetError(str(inter_path), f"event {event!r} is not one of {list(EVENTS)}")
    inter = pd.DataFrame(
        {"user_id": af.frame["user_id"].str.strip(), "item_id": af.frame["item_id"].str.strip()}
    )
    if "timestamp" in af.types:
        inter["ts"] = _timestamp_column(af, "timestamp")
    if "rating" in af.types:
        inter["event"] = event or "rating"
        inter["value"] = _float_column(af, "rating")
    else:
        inter["event"] = event or "purchase"
    ignored = [c for c in af.types if c not in ("user_id", "item_id", "timestamp", "rating")]
    if ignored:
        notes.append(f"{inter_path.name}: columns {ignored} are not part of the contract, ignored")

    no_user, no_item = inter["user_id"] == "", inter["item_id"] == ""
    count_drop(dropped, "missing user_id", int(no_user.sum()))
    count_drop(dropped, "missing item_id", int((no_item & ~no_user).sum()))
    inter = inter.loc[~(no_user | no_item)]
    if "ts" not in inter.columns:
        inter["ts"] = inter.groupby("user_id", sort=False).cumcount().astype(np.int64)
        notes.append(f"{inter_path.name} has no timestamp column: row order within user used as ts")
    inter = drop_exact_duplicates(inter, dropped)
    note_ts_ties(inter, notes)

    item_path = inter_path.with_suffix(".item")
    if item_path.is_file():
        items = _items(read_atomic(item_path, dropped), dropped, category_root)
    else:
        items = pd.DataFrame({"item_id": pd.Series([], dtype=object), "title": []})
        notes.append(f"no {item_path.name}: every item gets a placeholder title")
    items = add_placeholder_items(inter, items, notes, item_path.name)

    users = None
    user_path = inter_path.with_suffix(".user")
    if user_path.is_file():
        users = _users(read_atomic(user_path, dropped), dropped)
        unknown = int((~pd.Series(pd.unique(inter["user_id"])).isin(users["user_id"])).sum())
        if unknown:
            notes.append(f"{unknown} users with interactions are missing from {user_path.name}")
    return finish(
        fmt="ml100k",
        src=Path(src),
        name=name or stem,
        license=license,
        interactions=inter[[c for c in CANONICAL if c in inter.columns]],
        items=items,
        users=users,
        dropped=dropped,
        notes=notes,
    )


def _typed(af: AtomicFile, column: str, raw: str) -> Any:
    kind = af.types[column]
    if kind == "token":
        return raw
    if kind == "token_seq":
        return raw.split()
    try:
        return float(raw) if kind == "float" else [float(v) for v in raw.split()]
    except ValueError:
        return raw  # attributes are free-form; keep what the file says rather than fail


def _optional_text(values: pd.Series, field: str, af: AtomicFile) -> str | None:
    return (str(values[field]).strip() or None) if field in af.types else None


def _first(fields: tuple[str, ...], types: dict[str, str]) -> str | None:
    return next((f for f in fields if f in types), None)


def _items(af: AtomicFile, dropped: dict[str, int], category_root: str | None) -> pd.DataFrame:
    frame, file = af.frame, af.path.name
    if "item_id" not in af.types:
        raise DatasetError(str(af.path), f"missing column; found {list(af.types)}", "item_id")
    ids = frame["item_id"].str.strip()
    keep = ids != ""
    count_drop(dropped, f"missing item_id in {file}", int((~keep).sum()))
    dup = ids.duplicated() & keep
    count_drop(dropped, f"duplicate item_id in {file}", int(dup.sum()))
    keep &= ~dup
    title_f, year_f = _first(TITLE_FIELDS, af.types), _first(YEAR_FIELDS, af.types)
    genre_f = _first(GENRE_FIELDS, af.types)
    if category_root is None and title_f == "movie_title":
        category_root = "Movies"
    mapped = {"item_id", title_f, year_f, genre_f, "brand", "price", "description"}
    rest = [c for c in af.types if c not in mapped]
    records = []
    for row in np.flatnonzero(keep.to_numpy()):
        values = frame.iloc[row]
        item_id = ids.iloc[row]
        title = values[title_f].strip() if title_f else ""
        year = values[year_f].strip() if year_f else ""
        genres = values[genre_f].split() if genre_f else []
        attrs: dict[str, Any] = {c: _typed(af, c, values[c]) for c in rest if values[c] != ""}
        if year:
            attrs["year"] = int(year) if year.isdigit() else year
        if genres:
            attrs["genres"] = genres
        path = [category_root, *genres[:1]] if category_root else genres[:1]
        records.append(
            {
                "item_id": item_id,
                "title": (f"{title} ({year})" if year else title) or f"item {item_id}",
                "category": " > ".join(path) if genres else None,
                "brand": _optional_text(values, "brand", af),
                "description": _optional_text(values, "description", af),
                "attributes": json.dumps(attrs, ensure_ascii=False, sort_keys=True),
            }
        )
    items = pd.DataFrame.from_records(
        records, columns=["item_id", "title", "category", "brand", "description", "attributes"]
    )
    prices = _float_column(af, "price") if "price" in af.types else pd.Series(np.nan, frame.index)
    items["price"] = prices.to_numpy()[keep.to_numpy()]
    # Optional columns that the source never fills would only add noise to items.parquet.
    empty = [c for c in ("category", "brand", "description", "price") if items[c].isna().all()]
    return items.drop(columns=empty)


def _users(af: AtomicFile, dropped: dict[str, int]) -> pd.DataFrame:
    if "user_id" not in af.types:
        raise DatasetError(str(af.path), f"missing column; found {list(af.types)}", "user_id")
    users = af.frame.copy()
    users["user_id"] = users["user_id"].str.strip()
    keep = users["user_id"] != ""
    count_drop(dropped, f"missing user_id in {af.path.name}", int((~keep).sum()))
    dup = users["user_id"].duplicated() & keep
    count_drop(dropped, f"duplicate user_id in {af.path.name}", int(dup.sum()))
    users = users.loc[keep & ~dup]
    for column, kind in af.types.items():
        if kind == "float":
            users[column] = _float_column(af, column).loc[users.index]
    return users
