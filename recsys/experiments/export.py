"""Batch export: the top ``k`` for many shoppers through the served recommend pipeline.

The lists come from :func:`recsys.pipelines.build_pipelines`, the builder the API serves from,
with exploration off (a batch list is the greedy one), the decision rules given and, when an
event log is given, the shoppers' events since the snapshot: what ``/v1/recommend`` would
answer each shopper now.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.decision import DecisionConfig, DecisionRequest
from recsys.pipelines import build_pipelines

if TYPE_CHECKING:
    from recsys.artifacts import Bundle
    from recsys.events import EventLog

COLUMNS = ("user_id", "position", "item_id", "score", "model_version")


def read_users(spec: str, bundle: Bundle) -> list[str]:
    """``all`` (every shopper in the bundle) or a file of user ids: text (one a line), or a
    CSV or parquet file with a ``user_id`` column."""
    if spec == "all":
        return [str(u) for u in bundle.user_ids]
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"users file {path} not found (give a file or 'all')")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".csv"):
        frame = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path, dtype=str)
        if "user_id" not in frame.columns:
            raise ValueError(f"{path} has no user_id column; columns: {list(frame.columns)}")
        users = frame["user_id"].astype(str).tolist()
    else:
        users = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not users:
        raise ValueError(f"{path} lists no user ids")
    return list(dict.fromkeys(users))  # each shopper once, in file order


def iter_lists(
    bundle: Bundle,
    users: Iterable[str],
    k: int,
    ranker: str | None = None,
    decision: DecisionConfig | None = None,
    events: EventLog | None = None,
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(user_id, item ids, scores) of each shopper's greedy list, in order."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    session = None
    if events is not None:
        from recsys.events import SessionState

        session = SessionState.replay(events, bundle)
    pipeline = build_pipelines(bundle, ranker, session, events, decision).recommend
    item_ids = bundle.item_ids
    for user in users:
        request = DecisionRequest(k=k, explore=False, request_id=f"export:{user}")
        decision_out = pipeline.run({"user_id": user, "request": request}).state["decision"]
        yield user, item_ids[decision_out.ids], decision_out.scores


def export_frame(rows: Iterable[tuple[str, np.ndarray, np.ndarray]], version: str) -> pd.DataFrame:
    users: list[str] = []
    positions: list[np.ndarray] = []
    items: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    for user, ids, score in rows:
        users.extend([user] * len(ids))
        positions.append(np.arange(len(ids), dtype=np.int32))
        items.append(ids.astype(str))
        scores.append(score.astype(np.float32))
    cat = np.concatenate
    return pd.DataFrame(
        {
            "user_id": pd.array(users, dtype="string"),
            "position": cat(positions) if positions else np.zeros(0, np.int32),
            "item_id": pd.array(cat(items) if items else [], dtype="string"),
            "score": cat(scores) if scores else np.zeros(0, np.float32),
            "model_version": version,
        }
    )


def targets_for(decisions: pd.DataFrame, lists: pd.DataFrame) -> pd.DataFrame:
    """A candidate's lists as an OPE target: each logged request gets its shopper's list."""
    slots = decisions[["request_id", "user_id"]].drop_duplicates("request_id")
    return slots.merge(lists[["user_id", "position", "item_id"]], on="user_id")[
        ["request_id", "position", "item_id"]
    ]


def write_parquet(frame: pd.DataFrame, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    return out


def progress(users: Sequence[str], enabled: bool, desc: str) -> Iterable[str]:
    if not enabled:
        return users
    from tqdm.auto import tqdm

    return tqdm(users, desc=desc, unit="user", smoothing=0.1)
