"""The canonical dataset form (README, "Datasets: the canonical form") and its one loader.

A dataset is a directory holding ``interactions.parquet``, ``items.parquet``, ``meta.json`` and
optionally ``users.parquet``, ``queries.parquet`` and ``qrels.parquet``. Every reader of a
dataset goes through :func:`load_dataset`, which checks columns, types and references so that
downstream code can trust the frame it gets.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

EVENTS: tuple[str, ...] = ("view", "click", "cart", "purchase", "rating")
"""Allowed values of ``interactions.event``, weakest signal first."""

Kind = Literal["str", "int", "float", "bool"]

INTERACTIONS_REQUIRED: dict[str, Kind] = {
    "user_id": "str",
    "item_id": "str",
    "ts": "int",
    "event": "str",
}
INTERACTIONS_OPTIONAL: dict[str, Kind] = {"value": "float", "query": "str", "session_id": "str"}
ITEMS_REQUIRED: dict[str, Kind] = {"item_id": "str", "title": "str"}
ITEMS_OPTIONAL: dict[str, Kind] = {
    "brand": "str",
    "category": "str",
    "price": "float",
    "description": "str",
    "in_stock": "bool",
    "attributes": "str",
}
USERS_REQUIRED: dict[str, Kind] = {"user_id": "str"}
QUERIES_REQUIRED: dict[str, Kind] = {"query_id": "str", "text": "str"}
QUERIES_OPTIONAL: dict[str, Kind] = {"kind": "str"}
QRELS_REQUIRED: dict[str, Kind] = {"query_id": "str", "item_id": "str", "grade": "int"}

# Columns where a missing value is legitimate (e.g. an item with no known brand).
NULLABLE = {"value", "query", "session_id", "brand", "category", "price", "description"}


class DatasetError(ValueError):
    """A dataset file breaks the contract; the message names the file, column and value."""

    def __init__(self, file: str, message: str, column: str | None = None) -> None:
        where = f"{file}" + (f", column '{column}'" if column else "")
        super().__init__(f"{where}: {message}")
        self.file = file
        self.column = column


@dataclass
class Dataset:
    """An in-memory dataset in canonical form. Build it, then call :meth:`validate`."""

    interactions: pd.DataFrame
    items: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    users: pd.DataFrame | None = None
    queries: pd.DataFrame | None = None
    qrels: pd.DataFrame | None = None

    @property
    def name(self) -> str:
        return str(self.meta.get("name", "unnamed"))

    def counts(self) -> dict[str, int]:
        inter = self.interactions
        out = {
            "users": int(inter["user_id"].nunique()),
            "items": len(self.items),
            "items_with_interactions": int(inter["item_id"].nunique()),
            "interactions": len(inter),
        }
        if self.queries is not None:
            out["queries"] = len(self.queries)
        return out

    def validate(self) -> Dataset:
        """Coerce column types in place and check the contract; raise :class:`DatasetError`."""
        self.interactions = _check_frame(
            self.interactions, "interactions.parquet", INTERACTIONS_REQUIRED, INTERACTIONS_OPTIONAL
        )
        self.items = _check_frame(self.items, "items.parquet", ITEMS_REQUIRED, ITEMS_OPTIONAL)
        bad_events = ~self.interactions["event"].isin(EVENTS)
        if bad_events.any():
            values = sorted(set(self.interactions.loc[bad_events, "event"].astype(str)))[:5]
            raise DatasetError(
                "interactions.parquet",
                f"{int(bad_events.sum())} rows have an unknown event {values}; "
                f"valid events are {list(EVENTS)}",
                column="event",
            )
        _check_unique(self.items, "items.parquet", "item_id")
        _check_refs(self.interactions, "interactions.parquet", "item_id", self.items["item_id"])
        if self.users is not None:
            self.users = _check_frame(self.users, "users.parquet", USERS_REQUIRED, {})
            _check_unique(self.users, "users.parquet", "user_id")
        if (self.queries is None) != (self.qrels is None):
            raise DatasetError(
                "queries.parquet" if self.queries is None else "qrels.parquet",
                "queries.parquet and qrels.parquet come together; one of them is missing",
            )
        if self.queries is not None and self.qrels is not None:
            self.queries = _check_frame(
                self.queries, "queries.parquet", QUERIES_REQUIRED, QUERIES_OPTIONAL
            )
            _check_unique(self.queries, "queries.parquet", "query_id")
            self.qrels = _check_frame(self.qrels, "qrels.parquet", QRELS_REQUIRED, {})
            _check_refs(self.qrels, "qrels.parquet", "item_id", self.items["item_id"])
            _check_refs(self.qrels, "qrels.parquet", "query_id", self.queries["query_id"])
        self.meta = {**self.meta, "counts": self.counts()}
        return self

    def save(self, out: str | Path) -> Path:
        """Validate and write the dataset directory; returns its path."""
        self.validate()
        path = Path(out)
        path.mkdir(parents=True, exist_ok=True)
        self.interactions.to_parquet(path / "interactions.parquet", index=False)
        self.items.to_parquet(path / "items.parquet", index=False)
        for name in ("users", "queries", "qrels"):
            frame = getattr(self, name)
            target = path / f"{name}.parquet"
            if frame is not None:
                frame.to_parquet(target, index=False)
            elif target.exists():
                target.unlink()
        (path / "meta.json").write_text(json.dumps(self.meta, indent=2, sort_keys=True) + "\n")
        return path


def load_dataset(path: str | Path) -> Dataset:
    """Read and check a dataset directory. Raises :class:`DatasetError` naming what is wrong."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(str(root), "is not a dataset directory (expected a folder)")
    for required in ("interactions.parquet", "items.parquet", "meta.json"):
        if not (root / required).is_file():
            raise DatasetError(
                str(root / required),
                "is missing; a dataset directory holds interactions.parquet, items.parquet and "
                "meta.json (see `recsys data synth` or `recsys data import`)",
            )
    try:
        meta = json.loads((root / "meta.json").read_text())
    except json.JSONDecodeError as exc:
        raise DatasetError(str(root / "meta.json"), f"is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise DatasetError(str(root / "meta.json"), "must hold a JSON object")

    def read(name: str) -> pd.DataFrame | None:
        file = root / f"{name}.parquet"
        if not file.exists():
            return None
        try:
            return pd.read_parquet(file)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise DatasetError(str(file), f"cannot be read as parquet ({exc})") from exc

    interactions, items = read("interactions"), read("items")
    assert interactions is not None and items is not None
    ds = Dataset(
        interactions=interactions,
        items=items,
        meta=meta,
        users=read("users"),
        queries=read("queries"),
        qrels=read("qrels"),
    )
    return ds.validate()


def _check_frame(
    frame: pd.DataFrame, file: str, required: dict[str, Kind], optional: dict[str, Kind]
) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise DatasetError(file, f"expected a table, got {type(frame).__name__}")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DatasetError(
            file,
            f"missing required column(s) {missing}; required are {list(required)}, "
            f"optional are {list(optional)}; found {list(frame.columns)}",
        )
    out = frame.reset_index(drop=True)
    for column, kind in {**required, **optional}.items():
        if column in out.columns:
            out[column] = _coerce(out[column], kind, file, column)
    return out


def _coerce(col: pd.Series, kind: Kind, file: str, column: str) -> pd.Series:
    nulls = col.isna()
    if nulls.any() and column not in NULLABLE and not (kind == "str" and column == "attributes"):
        first = int(np.flatnonzero(nulls.to_numpy())[0])
        raise DatasetError(
            file, f"{int(nulls.sum())} missing values (first at row {first})", column=column
        )
    if kind == "str":
        if not (pd.api.types.is_string_dtype(col) or col.dtype == object):
            raise DatasetError(file, f"expected strings, got dtype {col.dtype}", column=column)
        # infer_dtype scans in C; the per-value check only runs to name the first offender.
        if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) not in (
            "string",
            "empty",
        ):
            values = col[~nulls]
            bad = values[~values.map(lambda v: isinstance(v, str))].iloc[0]
            raise DatasetError(
                file,
                f"expected strings, found {type(bad).__name__} value {bad!r}",
                column=column,
            )
        return col.astype(object).where(~nulls, None)
    if kind == "int":
        if not pd.api.types.is_integer_dtype(col):
            raise DatasetError(file, f"expected int64, got dtype {col.dtype}", column=column)
        return col.astype(np.int64)
    if kind == "float":
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise DatasetError(file, f"expected float, got dtype {col.dtype}", column=column)
        return col.astype(np.float64)
    if not pd.api.types.is_bool_dtype(col):
        raise DatasetError(file, f"expected bool, got dtype {col.dtype}", column=column)
    return col.astype(bool)


def _check_unique(frame: pd.DataFrame, file: str, column: str) -> None:
    dup = frame[column].duplicated()
    if dup.any():
        value = frame.loc[dup, column].iloc[0]
        raise DatasetError(file, f"{int(dup.sum())} duplicated ids, e.g. {value!r}", column=column)


def _check_refs(frame: pd.DataFrame, file: str, column: str, known: pd.Series) -> None:
    unknown = ~frame[column].isin(known)
    if unknown.any():
        examples = sorted(set(frame.loc[unknown, column]))[:5]
        raise DatasetError(
            file,
            f"{int(unknown.sum())} rows reference ids not in the items/queries table, "
            f"e.g. {examples}",
            column=column,
        )


def dataset_fingerprint(ds: Dataset) -> str:
    """sha256 over the interactions and catalog ids: same data, same fingerprint."""
    digest = hashlib.sha256()
    cols = [c for c in ("user_id", "item_id", "ts", "event") if c in ds.interactions]
    for frame in (ds.interactions[cols], ds.items[["item_id"]]):
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
