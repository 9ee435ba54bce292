"""Merged candidates kept by the history they came from, for shoppers who ask again.

Retrieval is a pure function of a request's history (item indexes, oldest first) for a given
bundle: every source reads only the history and its own fitted state, and the merge reads only
the sources' lists. So the merged candidates of a history can be kept and handed to the next
request with the same history, bit for bit what retrieval would compute again (the tests run
both). A new event changes the history, and so the key; a reload builds new stages, and so a
new cache. Ranking and the decision still run on every request: the user's features, stock and
exploration are read fresh.

Entries are :class:`CandidateBatch` rows of one request, compact (copied out of a batch, so a
kept row never holds a whole batch alive) and read-only (a stage that wrote into a shared row
would change another request's answer: numpy raises instead). The least recently used entry goes
first once ``size`` are kept; at 500 candidates from four sources one is about 22 KB.

:class:`KeptRows` is that bounded LRU for any stage's one-request output; the ranking stage keeps
its rankings in one too (:class:`recsys.ranking.ranker.RankedCache`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from recsys.retrieval.merge import CandidateBatch


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    entries: int
    size: int


V = TypeVar("V")


class KeptRows(Generic[V]):
    """A bounded LRU of one request's stage output by key, thread-safe, counting hits and
    misses; ``put`` keeps a read-only copy (``freeze``) and returns it."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a {type(self).__name__} needs size >= 1, got {size} (0 = none)")
        self.size = size
        self._rows: OrderedDict[bytes, V] = OrderedDict()
        self._lock = threading.Lock()  # serving may run pipelines on several threads
        self.hits = 0
        self.misses = 0

    def freeze(self, value: V) -> V:
        raise NotImplementedError

    def get(self, key: bytes) -> V | None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                self.misses += 1
                return None
            self._rows.move_to_end(key)
            self.hits += 1
            return row

    def put(self, key: bytes, value: V) -> V:
        """Keep ``value`` under ``key``; returns the kept (read-only) value, which the caller
        should pass on."""
        kept = self.freeze(value)
        with self._lock:
            self._rows[key] = kept
            self._rows.move_to_end(key)
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)
        return kept

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.hits, self.misses, len(self._rows), self.size)


class CandidateCache(KeptRows[CandidateBatch]):
    """One request's merged candidates by history (module doc)."""

    @staticmethod
    def key(history: np.ndarray) -> bytes:
        """The key of a history: its item indexes as retrieval reads them (int32)."""
        return np.asarray(history, dtype=np.int32).tobytes()

    def freeze(self, value: CandidateBatch) -> CandidateBatch:
        if len(value.ids) != 1:
            raise ValueError(f"a cache entry is one request's candidates, got {len(value.ids)}")
        return CandidateBatch(
            value.sources,
            frozen(value.ids),
            frozen(value.fused),
            frozen(value.source_scores),
            frozen(value.source_ranks),
            None if value.links is None else frozen(value.links),
        )


def frozen(array: np.ndarray) -> np.ndarray:
    """``array`` read-only, copied out first where it is a view (a view into a batch would keep
    the whole batch alive)."""
    out = array if array.base is None and array.flags.c_contiguous else array.copy()
    out.flags.writeable = False
    return out
