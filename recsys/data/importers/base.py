"""What every importer shares: the report it returns and the steps that close an import.

Importers never drop a row without saying so: each one counts drops per reason in
``ImportReport.dropped`` and explains judgement calls in ``ImportReport.notes``; both are copied
into ``meta.json`` so a dataset directory documents how it was made.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.data.contract import Dataset, DatasetError

RESEARCH_LICENSE = "research use; see source"


@dataclass(frozen=True)
class ImportReport:
    """The result of an import: a validated dataset plus an account of what was changed."""

    dataset: Dataset
    dropped: dict[str, int]
    notes: list[str]


def count_drop(dropped: dict[str, int], reason: str, n: int) -> None:
    """Add ``n`` rows to ``reason``; zero counts stay out so an empty dict means a clean import."""
    if n > 0:
        dropped[reason] = dropped.get(reason, 0) + int(n)


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(str(path), f"{what} not found")
    return path


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(str(path), f"is not UTF-8 text ({exc})") from exc


def parse_list_literal(text: Any, file: str, where: str, column: str) -> list[Any]:
    """Parse a list literal such as ``"[1, 2]"`` with ``ast.literal_eval`` (never eval)."""
    if not isinstance(text, str):
        raise DatasetError(file, f"{where}: expected a list literal, got {text!r}", column=column)
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise DatasetError(
            file, f"{where}: not a list literal: {text[:80]!r} ({exc})", column=column
        ) from exc
    if not isinstance(value, list | tuple):
        raise DatasetError(file, f"{where}: expected a list, got {text[:80]!r}", column=column)
    return list(value)


def drop_exact_duplicates(inter: pd.DataFrame, dropped: dict[str, int]) -> pd.DataFrame:
    """Drop rows equal in every canonical column; they carry no information beyond the first."""
    dup = inter.duplicated(keep="first")
    count_drop(dropped, "exact duplicate row", int(dup.sum()))
    return inter.loc[~dup] if dup.any() else inter


def add_placeholder_items(
    inter: pd.DataFrame, items: pd.DataFrame, notes: list[str], source: str
) -> pd.DataFrame:
    """Give items referenced by interactions but absent from the catalogue a title ``item <id>``.

    The contract requires every interaction's item to exist in ``items.parquet``; inventing a
    neutral title keeps the interactions (they are real signal) while the note says how many
    titles are not real.
    """
    known = set(items["item_id"]) if len(items) else set()
    missing = [i for i in pd.unique(inter["item_id"]) if i not in known]
    if not missing:
        return items
    notes.append(
        f"{len(missing)} items referenced by interactions are missing from {source}; "
        "they got placeholder titles 'item <id>'"
    )
    extra = pd.DataFrame({"item_id": missing, "title": [f"item {i}" for i in missing]})
    return pd.concat([items, extra], ignore_index=True) if len(items) else extra


def note_ts_ties(inter: pd.DataFrame, notes: list[str]) -> None:
    """Say how many interactions share a user's timestamp, since their order is then arbitrary."""
    ties = int(inter.duplicated(["user_id", "ts"], keep=False).sum())
    if ties:
        notes.append(
            f"{ties} interactions share a timestamp with another interaction of the same user; "
            "their relative order is the source file order"
        )


def finish(
    *,
    fmt: str,
    src: Path,
    name: str,
    license: str,
    interactions: pd.DataFrame,
    items: pd.DataFrame,
    dropped: dict[str, int],
    notes: list[str],
    users: pd.DataFrame | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> ImportReport:
    """Assemble, validate and describe the dataset."""
    meta: dict[str, Any] = {
        "name": name,
        "source": {"path": str(src), "format": fmt},
        "license": license,
        "notes": list(notes),
        "dropped": dict(dropped),
        **(extra_meta or {}),
    }
    ds = Dataset(
        interactions=interactions.reset_index(drop=True),
        items=items.reset_index(drop=True),
        meta=meta,
        users=None if users is None else users.reset_index(drop=True),
    )
    ds.validate()
    return ImportReport(dataset=ds, dropped=dict(dropped), notes=list(notes))
