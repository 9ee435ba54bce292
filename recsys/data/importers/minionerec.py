"""MiniOneRec Amazon CSVs (``valid.csv``, ``test.csv``) with an ``*.item.json`` catalogue.

Each CSV row is one step of a user's sequence: up to ``window`` previous items
(``history_item_id``, a list literal) and the next item (``item_id``). The training split is not
distributed, so each user's sequence is rebuilt from the rows: the first row's history, then
every row's target in time order (train.csv if present, then valid.csv, then test.csv, each in
file order). A row whose history is not the tail of the sequence rebuilt so far contradicts the
earlier rows; its target is dropped and counted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.contract import DatasetError
from recsys.data.importers.base import (
    RESEARCH_LICENSE,
    ImportReport,
    add_placeholder_items,
    count_drop,
    finish,
    parse_list_literal,
    read_text,
    require_file,
)

REQUIRED = ("user_id", "history_item_id", "item_id")
INCONSISTENT = "history inconsistent with earlier rows"


def _read_split(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DatasetError(str(path), f"is not a readable CSV ({exc})") from exc
    for column in REQUIRED:
        if column not in frame.columns:
            raise DatasetError(
                str(path), f"missing column; found {list(frame.columns)}", column=column
            )
    return frame


def _clean_id(value: Any, file: str, where: str, column: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DatasetError(file, f"{where}: expected an item id, got {value!r}", column=column)
    text = str(value).strip()
    if not text:
        raise DatasetError(file, f"{where}: empty item id", column=column)
    return text


def rebuild_sequences(
    rows: list[tuple[str, list[str], str]], dropped: dict[str, int]
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Rebuild per-user sequences from time-ordered (user, history, target) rows.

    Returns the sequences and how many leading items of each came from a first-row history.
    A history must equal the tail of the sequence so far; when it is shorter than the longest
    history in the files (the truncation window) it must be the whole sequence, because a
    truncated history is always a full window.
    """
    window = max((len(h) for _, h, _ in rows), default=0)
    seqs: dict[str, list[str]] = {}
    seeded: dict[str, int] = {}
    for user, history, target in rows:
        seq = seqs.get(user)
        if seq is None:
            seqs[user] = [*history, target]
            seeded[user] = len(history)
            continue
        k = len(history)
        tail_ok = k <= len(seq) and seq[len(seq) - k :] == history
        if not tail_ok or (k < window and k != len(seq)):
            count_drop(dropped, INCONSISTENT, 1)
            continue
        seq.append(target)
    return seqs, seeded


def _catalogue(path: Path, dropped: dict[str, int], notes: list[str]) -> pd.DataFrame:
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise DatasetError(str(path), f"is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DatasetError(str(path), "must hold a JSON object: item id -> {title, ...}")
    records = []
    broken = [0]
    for key, entry in data.items():
        if not isinstance(entry, dict):
            raise DatasetError(str(path), f"item {key!r}: expected an object, got {entry!r}")
        title = str(entry.get("title") or "").strip()
        if not title:
            count_drop(dropped, f"item without title in {path.name} (placeholder used)", 1)
        records.append(
            {
                "item_id": str(key).strip(),
                "title": title or f"item {key}",
                "brand": str(entry.get("brand") or "").strip() or None,
                "category": _category(entry.get("categories"), path, key),
                "description": _description(entry.get("description"), path, key, broken),
            }
        )
    if broken[0]:
        notes.append(
            f"{broken[0]} descriptions in {path.name} are malformed list literals "
            "(unescaped quotes); their paragraphs were split on quote-comma-quote instead"
        )
    return pd.DataFrame.from_records(
        records, columns=["item_id", "title", "brand", "category", "description"]
    )


def _description(value: Any, path: Path, key: str, notes_count: list[int]) -> str | None:
    """Descriptions are list-literal strings of paragraphs; join them into one text.

    Some source literals are broken (an unescaped apostrophe inside a quoted paragraph). The
    description is free text, so such an item is kept: the brackets and quotes are stripped by
    hand and the event is counted in the notes.
    """
    if value is None:
        return None
    if isinstance(value, list):
        parts = value
    elif isinstance(value, str) and value.strip().startswith("["):
        try:
            parts = parse_list_literal(value, str(path), f"item {key!r}", "description")
        except DatasetError:
            notes_count[0] += 1
            body = value.strip()[1:].removesuffix("]").strip()
            parts = re.split(r"""['"], ['"]""", body.strip("'\""))
    else:
        parts = [value]
    text = "\n".join(str(p).strip() for p in parts if str(p).strip())
    return text or None


def _category(value: Any, path: Path, key: str) -> str | None:
    """Categories may be a path string, a list of names, or a list of paths (first one wins)."""
    if isinstance(value, str) and value.strip().startswith("["):
        value = parse_list_literal(value, str(path), f"item {key!r}", "categories")
    if isinstance(value, list):
        if value and isinstance(value[0], list):
            value = value[0]
        names = [str(v).strip() for v in value if str(v).strip()]
        return " > ".join(names) or None
    text = str(value or "").strip()
    return text or None


def import_minionerec(
    src: str | Path,
    *,
    name: str | None = None,
    license: str = RESEARCH_LICENSE,
) -> ImportReport:
    """Import a MiniOneRec folder: ``valid.csv``, ``test.csv`` (``train.csv`` if present)."""
    folder = Path(src)
    if not folder.is_dir():
        raise DatasetError(str(folder), "not found; expected a folder with valid.csv and test.csv")
    dropped: dict[str, int] = {}
    notes: list[str] = []
    # train.csv is optional (MiniOneRec does not publish it); valid and test are not.
    files = [folder / "train.csv"] if (folder / "train.csv").is_file() else []
    files += [require_file(folder / f"{s}.csv", f"{s} split") for s in ("valid", "test")]
    if len(files) == 2:
        notes.append(
            "no train.csv: sequences rebuilt from each user's first history plus the targets "
            "of valid.csv then test.csv; items before a first history's window are lost"
        )
    rows: list[tuple[str, list[str], str]] = []
    titles: dict[str, str] = {}
    for path in files:
        frame = _read_split(path)
        for i, (user, hist_text, target) in enumerate(
            zip(frame["user_id"], frame["history_item_id"], frame["item_id"], strict=True)
        ):
            where = f"line {i + 2}"  # header is line 1
            if not user.strip():
                count_drop(dropped, "missing user_id", 1)
                continue
            history = [
                _clean_id(v, str(path), where, "history_item_id")
                for v in parse_list_literal(hist_text, str(path), where, "history_item_id")
            ]
            rows.append((user.strip(), history, _clean_id(target, str(path), where, "item_id")))
        if "item_title" in frame.columns:
            titles.update(zip(frame["item_id"].str.strip(), frame["item_title"], strict=True))
    seqs, seeded = rebuild_sequences(rows, dropped)

    lengths = np.fromiter((len(s) for s in seqs.values()), dtype=np.int64, count=len(seqs))
    inter = pd.DataFrame(
        {
            "user_id": np.repeat(np.asarray(list(seqs), dtype=object), lengths),
            "item_id": np.asarray([i for s in seqs.values() for i in s], dtype=object),
            "ts": np.concatenate([np.arange(n, dtype=np.int64) for n in lengths])
            if len(lengths)
            else np.zeros(0, dtype=np.int64),
            "event": "purchase",
        }
    )
    repeats = int(inter.duplicated(["user_id", "item_id"]).sum())
    notes.append(
        "no timestamps in the source: ts is the position in the rebuilt sequence; "
        "event is 'purchase' (5-core reviews read as purchases)"
    )
    notes.append(
        f"{len(rows)} rows; {sum(seeded.values())} items from first-row histories plus "
        f"{len(rows) - len(seqs) - dropped.get(INCONSISTENT, 0)} later targets and "
        f"{len(seqs)} first-row targets; {repeats} interactions repeat an item already in "
        "the user's sequence (kept as in the source)"
    )

    catalogue = sorted(folder.glob("*.item.json"))
    if len(catalogue) > 1:
        raise DatasetError(str(folder), f"several *.item.json files {[p.name for p in catalogue]}")
    if catalogue:
        items = _catalogue(catalogue[0], dropped, notes)
        dup = items["item_id"].duplicated()
        count_drop(dropped, f"duplicate item id in {catalogue[0].name}", int(dup.sum()))
        items = items.loc[~dup]
        source = catalogue[0].name
    else:
        items = pd.DataFrame({"item_id": pd.Series([], dtype=object), "title": []})
        source = "the catalogue (no *.item.json in the folder)"
    before = len(items)
    items = add_placeholder_items(inter, items, notes, source)
    if len(items) > before:
        # The CSVs carry target titles: better than a bare id when the catalogue lacks one.
        extra = items.index >= before
        items.loc[extra, "title"] = [
            titles.get(i) or f"item {i}" for i in items.loc[extra, "item_id"]
        ]
    return finish(
        fmt="minionerec",
        src=folder,
        name=name or (catalogue[0].name.removesuffix(".item.json") if catalogue else folder.name),
        license=license,
        interactions=inter,
        items=items,
        dropped=dropped,
        notes=notes,
    )
