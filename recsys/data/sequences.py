"""Integer-encoded per-user item sequences, the form every model and the evaluator work on.

Each user's sequence holds the *distinct* items they touched, in order of first interaction:
a view followed by a click, cart and purchase of the same item is one step, and a repeat
purchase does not re-enter it. Leave-one-out then asks "which new item comes next", the only
question full ranking with history exclusion can answer (an item already in the history is
excluded from the ranking, so it could never be hit).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from recsys.data.contract import EVENTS, Dataset

EVENT_STRENGTH = {name: rank for rank, name in enumerate(EVENTS)}


@dataclass(frozen=True)
class Sequences:
    """Ragged per-user sequences in CSR layout.

    ``items[indptr[u]:indptr[u + 1]]`` is user ``u``'s item sequence, oldest first.
    """

    indptr: np.ndarray  # (U + 1,) int64
    items: np.ndarray  # (N,) int32 item index
    ts: np.ndarray  # (N,) int64 time of first interaction
    strength: np.ndarray  # (N,) int8 strongest event index into EVENTS for that user-item
    n_items: int

    @classmethod
    def one_history(cls, items: np.ndarray, n_items: int) -> Sequences:
        """One user's items alone, without times or events (left empty): what history
        exclusion reads. Cheaper at one request than :meth:`select`."""
        empty = items[:0]
        return cls(np.array([0, len(items)]), items, empty.astype(np.int64),
                   empty.astype(np.int8), n_items)  # fmt: skip

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    @cached_property
    def lengths(self) -> np.ndarray:
        """(U,) int64 items per user; read-only, as it is computed once and shared (a request
        reads it in every source)."""
        lengths = np.diff(self.indptr)
        lengths.flags.writeable = False
        return lengths

    def user(self, u: int) -> np.ndarray:
        return self.items[self.indptr[u] : self.indptr[u + 1]]

    def drop_last(self, k: int | np.ndarray) -> Sequences:
        """The same users with their last ``k`` items removed (``k`` scalar or per user)."""
        lengths = self.lengths
        keep = np.maximum(lengths - k, 0)
        mask = _position_in_row(self.indptr) < np.repeat(keep, lengths)
        return self._take(mask, keep)

    def select(self, users: np.ndarray) -> Sequences:
        """Sequences of the given users, in the given order."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        lengths = ends - starts
        indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
        idx = np.repeat(starts, lengths) + _position_in_row(indptr)
        return Sequences(indptr, self.items[idx], self.ts[idx], self.strength[idx], self.n_items)

    def last(self, k: int) -> Sequences:
        """Only the most recent ``k`` items of every user."""
        lengths = self.lengths
        pos = _position_in_row(self.indptr)
        mask = pos >= np.repeat(lengths - k, lengths)
        return self._take(mask, np.minimum(lengths, k))

    def user_index(self) -> np.ndarray:
        """(N,) the user of every entry."""
        return np.repeat(np.arange(self.n_users), self.lengths)

    def _take(self, mask: np.ndarray, new_lengths: np.ndarray) -> Sequences:
        indptr = np.r_[0, np.cumsum(new_lengths)].astype(np.int64)
        return Sequences(indptr, self.items[mask], self.ts[mask], self.strength[mask], self.n_items)


def _position_in_row(indptr: np.ndarray) -> np.ndarray:
    lengths = np.diff(indptr)
    return np.arange(indptr[-1]) - np.repeat(indptr[:-1], lengths)


@dataclass(frozen=True)
class EncodedDataset:
    """A dataset's interactions as integer sequences plus the id maps back to strings."""

    user_ids: np.ndarray  # (U,) object str
    item_ids: np.ndarray  # (I,) object str; every catalog item, interacted or not
    sequences: Sequences

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def item_index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.item_ids)}


def encode(ds: Dataset) -> EncodedDataset:
    """Build per-user distinct-item sequences ordered by first interaction.

    Ties in ``ts`` keep file order, so ordinal timestamps (positions) round-trip exactly.
    """
    inter = ds.interactions
    item_ids = ds.items["item_id"].to_numpy(dtype=object)
    item_codes = pd.Index(item_ids).get_indexer(inter["item_id"])
    user_codes, user_ids = pd.factorize(inter["user_id"], sort=True)
    strength = inter["event"].map(EVENT_STRENGTH).to_numpy(dtype=np.int8)
    frame = pd.DataFrame(
        {
            "u": user_codes.astype(np.int64),
            "i": item_codes.astype(np.int32),
            "ts": inter["ts"].to_numpy(np.int64),
            "s": strength,
            "row": np.arange(len(inter)),
        }
    )
    frame = frame.sort_values(["u", "ts", "row"], kind="stable")
    strongest = frame.groupby(["u", "i"], sort=False)["s"].transform("max")
    frame = frame.assign(s=strongest.to_numpy(np.int8))
    first = frame.drop_duplicates(["u", "i"], keep="first")
    counts = np.bincount(first["u"].to_numpy(), minlength=len(user_ids))
    seqs = Sequences(
        indptr=np.r_[0, np.cumsum(counts)].astype(np.int64),
        items=first["i"].to_numpy(np.int32),
        ts=first["ts"].to_numpy(np.int64),
        strength=first["s"].to_numpy(np.int8),
        n_items=len(item_ids),
    )
    return EncodedDataset(np.asarray(user_ids, dtype=object), item_ids, seqs)
