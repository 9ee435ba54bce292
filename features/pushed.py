"""The journal of user rows pushed into a repository's online store since it was materialized.

:class:`features.online.OnlineFeatures` serves known users from the rows the last
materialization wrote (loaded in bulk); a user whose row was pushed after it must be read from
the online store instead. :class:`features.push.EventPusher` writes through Feast and then
appends one JSON line per pushed user here (``["user_id", "event_timestamp"]``) and sets the
journal's change stamp (:mod:`recsys.stamp`) to the file's new size. A reader in any process
compares the stamp with the one it saw (a load from shared memory, no system call) and reads
only the lines appended since.

The journal is append-only: an append of a few lines is one ``write`` to a file opened with
``O_APPEND``, and a reader takes complete lines only, so a line being written is read the next
time. A line whose timestamp is not after the materialization's is older than the rows that
materialization wrote (Feast keeps the newest row per entity) and is ignored by the reader.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from recsys.stamp import ChangeStamp

JOURNAL = "pushed_users.jsonl"


def stamp_of(journal: Path) -> ChangeStamp:
    return ChangeStamp(journal.with_name(journal.name + "-stamp"))


def record(journal: Path, users: Sequence[str], stamps: Sequence[pd.Timestamp]) -> None:
    """Append the pushed ``users`` with the timestamps their rows were written with, then move
    the stamp: call after the rows are in the online store."""
    lines = "".join(
        json.dumps([str(u), pd.Timestamp(s).isoformat()]) + "\n"
        for u, s in zip(users, stamps, strict=True)
    )
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, lines.encode())
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    stamp = stamp_of(journal)
    stamp.set(size)
    stamp.close()


def read_from(journal: Path, offset: int, after: pd.Timestamp) -> tuple[set[str], int]:
    """Users of the complete lines from byte ``offset`` on whose rows are newer than ``after``
    (the materialization's timestamp), and the offset to read from next time."""
    try:
        with open(journal, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return set(), offset
    end = data.rfind(b"\n") + 1  # a line still being written is read next time
    users: set[str] = set()
    for line in data[:end].decode().splitlines():
        user, written = json.loads(line)
        if pd.Timestamp(written) > after:
            users.add(user)
    return users, offset + end
