"""S3-Rec sequence files: one line per user, ``user item item …`` in time order.

The files carry no timestamps and no text, so ``ts`` is the position in the line and titles are
placeholders. The Amazon sets in this form are 5-core review data, which we read as purchases.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.contract import DatasetError
from recsys.data.importers.base import (
    RESEARCH_LICENSE,
    ImportReport,
    count_drop,
    finish,
    read_text,
    require_file,
)


def _find_attributes(src: Path, attributes: str | Path | None) -> Path | None:
    if attributes is not None:
        return require_file(Path(attributes), "item attributes file (attributes=)")
    own = src.with_name(f"{src.stem}_item2attributes.json")
    if own.is_file():
        return own
    found = sorted(src.parent.glob("*_item2attributes.json"))
    # Several candidates with none matching the file name: guessing could attach the wrong set.
    return found[0] if len(found) == 1 else None


def _load_attributes(path: Path) -> dict[str, list[object]]:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DatasetError(str(path), f"is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DatasetError(str(path), "must hold a JSON object: item id -> list of attribute ids")
    for key, value in data.items():
        if not isinstance(value, list):
            raise DatasetError(str(path), f"item {key!r}: expected a list, got {value!r}")
    return {str(k): v for k, v in data.items()}


def import_s3rec(
    src: str | Path,
    *,
    name: str | None = None,
    attributes: str | Path | None = None,
    license: str = RESEARCH_LICENSE,
) -> ImportReport:
    """Import an S3-Rec ``<Name>.txt`` file.

    ``attributes`` points to an ``item2attributes`` JSON file; by default a sibling
    ``<Name>_item2attributes.json`` (or the folder's only ``*_item2attributes.json``) is used.
    """
    path = Path(src)
    require_file(path, "S3-Rec sequence file")
    dropped: dict[str, int] = {}
    notes = [
        "no timestamps in the source: ts is the position in the user's line (0, 1, 2, ...)",
        "event is 'purchase': the Amazon 5-core sets in this form are reviews, read as purchases",
    ]
    users: list[str] = []
    seqs: list[list[str]] = []
    seen: dict[str, int] = {}
    repeated: list[str] = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            count_drop(dropped, "empty line", 1)
            continue
        user, line_items = tokens[0], tokens[1:]
        if not line_items:
            count_drop(dropped, "user with no items", 1)
            continue
        if user in seen:
            # A second line for one user cannot be placed in time relative to the first.
            count_drop(dropped, "user repeated on a later line", 1)
            repeated.append(f"line {number} (user {user!r}, first on line {seen[user]})")
            continue
        seen[user] = number
        users.append(user)
        seqs.append(line_items)
    if repeated:
        notes.append(f"lines of already-seen users dropped: {', '.join(repeated[:5])}")
    if not users:
        raise DatasetError(str(path), "holds no 'user item item ...' line")

    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    inter = pd.DataFrame(
        {
            "user_id": np.repeat(np.asarray(users, dtype=object), lengths),
            "item_id": np.asarray([i for s in seqs for i in s], dtype=object),
            "ts": np.arange(int(lengths.sum()), dtype=np.int64) - starts,
            "event": "purchase",
        }
    )
    repeats = int(inter.duplicated(["user_id", "item_id"]).sum())
    if repeats:
        notes.append(f"{repeats} interactions repeat an item already in the user's sequence; kept")

    item_ids = pd.unique(inter["item_id"])
    items = pd.DataFrame({"item_id": item_ids, "title": [f"item {i}" for i in item_ids]})
    notes.append("no item text in the source: titles are placeholders 'item <id>'")
    attr_path = _find_attributes(path, attributes)
    extra_meta = {}
    if attr_path is not None:
        attrs = _load_attributes(attr_path)
        items["attributes"] = [
            json.dumps({"attribute_ids": attrs[i]}) if i in attrs else None for i in item_ids
        ]
        missing = int(items["attributes"].isna().sum())
        items["attributes"] = items["attributes"].fillna("{}")
        notes.append(
            f"attribute ids from {attr_path.name}"
            + (f"; {missing} items have none there" if missing else "")
        )
        extra_meta["attributes_source"] = str(attr_path)
    return finish(
        fmt="s3rec",
        src=path,
        name=name or path.stem,
        license=license,
        interactions=inter,
        items=items,
        dropped=dropped,
        notes=notes,
        extra_meta=extra_meta,
    )
