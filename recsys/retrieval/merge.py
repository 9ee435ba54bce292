"""Merge per-source candidate lists into one, with per-source quotas and de-duplication.

Each source guarantees its best ``quota`` items a place; the remaining slots go to the items
with the best fused rank across sources, or, where ``fill`` weights are given (chosen on
validation users by ``recsys.retrieval.tune``), to the items with the best weighted log-rank
score: a geometric mean of the ranks, which favours items several sources rank fairly high over
one source's head more than RRF does. The merged list is ordered by weighted reciprocal-rank
fusion (RRF), so an item several sources agree on rises, and every candidate keeps the rank and
score it had in each source that found it: the ranker uses those as features.

The rows are merged by a C kernel (``recsys/native/merge.c``) where one could be built, else by
its numpy twin here (:func:`_merge_rows`); both give the same answer bit for bit.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from recsys import native

RRF_K = 60.0  # the usual RRF damping: rank 1 vs rank 2 matters, rank 400 vs 401 barely


@dataclass(frozen=True)
class SourceLists:
    """One source's ranked lists for a batch: ids (B, M) with -1 padding, scores (B, M)."""

    ids: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class CandidateBatch:
    """Merged candidates for B requests, N slots each (-1 = empty slot).

    ids: (B, N) item index, best fused rank first.
    fused: (B, N) the RRF score that orders them.
    source_scores: (B, N, S) each source's score for the candidate, NaN where it did not find it.
    source_ranks: (B, N, S) 1-based rank in each source's list, 0 where it did not find it.
    links: (B, N, K) co-visitation weight from each of the request's K latest items (latest
        first) to the candidate; None where no co-visitation source gave them
        (``Retriever.with_links``).
    """

    sources: tuple[str, ...]
    ids: np.ndarray
    fused: np.ndarray
    source_scores: np.ndarray
    source_ranks: np.ndarray
    links: np.ndarray | None = None

    def rows(self, start: int, stop: int) -> CandidateBatch:
        """Requests ``start:stop`` of this batch (views, no copy)."""
        return CandidateBatch(
            self.sources,
            self.ids[start:stop],
            self.fused[start:stop],
            self.source_scores[start:stop],
            self.source_ranks[start:stop],
            None if self.links is None else self.links[start:stop],
        )

    @classmethod
    def stack(cls, batches: Sequence[CandidateBatch]) -> CandidateBatch:
        """The requests of ``batches`` as one batch; they must share sources and width."""
        first = batches[0]
        bad = [b.ids.shape[1:] for b in batches if b.sources != first.sources
               or b.ids.shape[1:] != first.ids.shape[1:]
               or (b.links is None) != (first.links is None)]  # fmt: skip
        if bad:
            raise ValueError(
                f"cannot stack candidate batches of widths {bad} with {first.ids.shape[1:]} "
                f"from sources {list(first.sources)}: each needs the same sources and width "
                "(and co-visitation links in all or none)"
            )
        return cls(
            first.sources,
            np.concatenate([b.ids for b in batches]),
            np.concatenate([b.fused for b in batches]),
            np.concatenate([b.source_scores for b in batches]),
            np.concatenate([b.source_ranks for b in batches]),
            None if first.links is None else np.concatenate([b.links for b in batches]),
        )

    def found_by(self, row: int, slot: int) -> list[str]:
        return [s for s, r in zip(self.sources, self.source_ranks[row, slot], strict=True) if r]


def quota_sizes(quotas: Mapping[str, float], total: int) -> dict[str, int]:
    """Split ``total`` slots by the quota shares (largest remainders get the rounding)."""
    bad = {name: q for name, q in quotas.items() if q < 0}
    if bad:
        raise ValueError(f"quotas must be non-negative, got {bad}")
    weight = sum(quotas.values())
    if weight <= 0:
        raise ValueError(f"quotas must not all be zero: {dict(quotas)}")
    exact = {name: total * q / weight for name, q in quotas.items()}
    sizes = {name: int(v) for name, v in exact.items()}
    by_remainder = sorted(exact, key=lambda n: exact[n] - sizes[n], reverse=True)
    for name in by_remainder[: total - sum(sizes.values())]:
        sizes[name] += 1
    return sizes


def merge(
    lists: Mapping[str, SourceLists],
    quotas: Mapping[str, float],
    total: int,
    order: Sequence[str] | None = None,
    weights: Mapping[str, float] | None = None,
    fill: Mapping[str, float] | None = None,
    guaranteed: int | None = None,
) -> CandidateBatch:
    """Quota-guaranteed, RRF-ordered, de-duplicated union of the sources' lists.

    ``weights`` scale each source's reciprocal ranks in the fused order (default: the quotas).
    ``fill`` (default: none, the fused order fills) weights each source's log-rank in the score
    that picks the candidates beyond the quotas: ``-sum_s fill_s * log(rank_s)``, a source that
    did not list the item counting as rank ``2 * depth``. The order stays the fused one.
    ``guaranteed`` (default ``total``) is how many slots the quotas split; the rest is filled.
    """
    names = tuple(order or lists)
    missing = [n for n in names if n not in quotas]
    if missing:
        raise ValueError(f"no quota for source(s) {missing}; quotas given for {sorted(quotas)}")
    if not names:
        raise ValueError("merge needs at least one source")
    batch = next(iter(lists.values())).ids.shape[0]
    share = total if guaranteed is None else guaranteed
    if not 0 <= share <= total:
        raise ValueError(f"guaranteed must be in [0, total={total}], got {share}")
    sizes = (
        _quota_sizes(tuple((n, float(quotas[n])) for n in names), share)
        if share
        else dict.fromkeys(names, 0)
    )
    fusion = weights or quotas
    w = np.array([fusion.get(n, 0.0) for n in names], dtype=np.float64)
    ids = np.full((batch, total), -1, dtype=np.int64)
    fused = np.zeros((batch, total), dtype=np.float32)
    src_scores = np.full((batch, total, len(names)), np.nan, dtype=np.float32)
    src_ranks = np.zeros((batch, total, len(names)), dtype=np.int32)
    quota = np.array([sizes[n] for n in names])
    fill_w = None if fill is None else np.array([fill.get(n, 0.0) for n in names], np.float64)
    widths = [lists[name].ids.shape[1] for name in names]
    all_ids = np.concatenate([lists[n].ids for n in names], axis=1).astype(np.int64)  # (B, S*M)
    all_scores = np.concatenate([lists[n].scores for n in names], axis=1).astype(np.float32)
    width = int(all_ids.max(initial=-1)) + 1
    out = (ids, fused, src_scores, src_ranks)
    kernel = _kernel()
    if kernel is None or not _merge_native(
        kernel, all_ids, all_scores, _tables(tuple(widths), tuple(w.tolist())), quota, fill_w,
        total, width, out,
    ):  # fmt: skip
        _merge_rows(all_ids, all_scores, widths, w, quota, fill_w, total, width, out)
    return CandidateBatch(names, ids, fused, src_scores, src_ranks)


def _merge_rows(
    all_ids: np.ndarray,
    all_scores: np.ndarray,
    widths: list[int],
    w: np.ndarray,
    quota: np.ndarray,
    fill_w: np.ndarray | None,
    total: int,
    width: int,
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """The merge row by row in numpy (the C kernel's twin): fills ``out`` as ``merge`` says."""
    ids, fused, src_scores, src_ranks = out
    n_sources = len(widths)
    # the same for every request: which source and rank each entry of a row's lists holds
    all_src, all_rank = _entry_layout(tuple(widths))  # (S*M,) each
    rrf_terms = _rrf_terms(tuple(w.tolist()), max(widths, default=0))  # (S, M+1)
    seen = np.zeros(width, dtype=bool)  # scratch over the ids, cleared after each row
    where = np.empty(width, dtype=np.int32)  # scratch: id -> candidate, read only where written
    for row in range(len(all_ids)):
        valid = all_ids[row] >= 0
        if not valid.any():
            continue
        flat_ids, flat_src = all_ids[row][valid], all_src[valid]
        flat_rank, flat_score = all_rank[valid], all_scores[row][valid]
        # the distinct ids in increasing order without sorting them: mark, then read the marks
        seen[flat_ids] = True
        items = np.flatnonzero(seen)  # (C,)
        seen[items] = False
        where[items] = np.arange(len(items), dtype=np.int32)
        inverse = where[flat_ids]  # (E,) each entry's candidate
        # Should a source list an item twice, its best rank (and that rank's score) wins.
        # (Assigning in reversed order does not ensure it: numpy may walk a reversed index
        # forwards, and then the worst rank won.)
        cell = flat_src * len(items) + inverse  # (E,) flat (source, candidate) cell
        best = np.full(n_sources * len(items), np.iinfo(np.int32).max, dtype=np.int32)
        np.minimum.at(best, cell, flat_rank.astype(np.int32))
        wins = flat_rank == best[cell]  # (E,) one entry per filled cell
        ranks = np.zeros((n_sources, len(items)), dtype=np.int32)  # (S, C)
        scores = np.full((n_sources, len(items)), np.nan, dtype=np.float32)  # (S, C)
        ranks.reshape(-1)[cell[wins]] = flat_rank[wins]
        scores.reshape(-1)[cell[wins]] = flat_score[wins]
        # Source by source (a handful): the same sums, in the same order, as a sum over the
        # source axis, without a reduction's per-row overhead.
        rrf = np.zeros(len(items), dtype=np.float64)  # (C,)
        for s, rank_s in enumerate(ranks):
            rrf += rrf_terms[s, rank_s]  # w_s / (RRF_K + rank), 0 where the source missed it
        # each source's own top `quota` items are in
        chosen = np.any((ranks > 0) & (ranks <= quota[:, None]), axis=0)  # (C,)
        # the fused order (ties: lower id first) both picks the fill and orders the list;
        # only the picked few are sorted, not every candidate
        short = total - int(chosen.sum())
        if short > 0:
            if fill_w is None:
                chosen[_best_fused(rrf, np.flatnonzero(~chosen), short)] = True
            else:
                chosen[_best_log_rank(ranks, fill_w, widths, chosen, short)] = True
        picked = np.flatnonzero(chosen)  # (P,) ascending ids
        picked = picked[np.argsort(-rrf[picked], kind="stable")][:total]
        n = len(picked)
        ids[row, :n] = items[picked]
        fused[row, :n] = rrf[picked]
        src_ranks[row, :n] = ranks[:, picked].T
        src_scores[row, :n] = scores[:, picked].T


@lru_cache(maxsize=1)
def _kernel() -> Any:
    """The C merge (``recsys/native/merge.c``), or None where native kernels are off or
    cannot be built: the numpy loop above gives the same answer."""
    argtypes = [ctypes.c_int64] * 6 + [ctypes.c_void_p] * 12
    return native.function("merge", "recsys_merge", argtypes, ctypes.c_int)


def _merge_native(
    kernel: Any,  # the C function (_kernel)
    all_ids: np.ndarray,
    all_scores: np.ndarray,
    tables: _Tables,
    quota: np.ndarray,
    fill_w: np.ndarray | None,
    total: int,
    width: int,
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> bool:
    """Fill ``out`` (ids, fused, source scores, source ranks; pre-filled as empty slots) with
    the C merge; False (nothing written) when it could not get scratch memory."""
    batch, entries = all_ids.shape
    sources, m1 = tables.terms.shape
    return kernel(
        batch, entries, sources, m1, total, width,
        native.address(all_ids), native.address(all_scores), *tables.addresses[:3],
        native.address(np.ascontiguousarray(quota, np.int64)),
        None if fill_w is None else native.address(fill_w), tables.addresses[3],
        *(native.address(a) for a in out),
    ) == 0  # fmt: skip


@dataclass(frozen=True)
class _Tables:
    """The read-only tables the C merge reads for one set of list widths and weights, with
    their addresses (held together, so an address never outlives its array)."""

    src: np.ndarray  # (E,) int64 source of each entry
    rank: np.ndarray  # (E,) int64 1-based rank of each entry
    terms: np.ndarray  # (S, M+1) float64 RRF terms
    log_ranks: np.ndarray  # (S, M+1) float64 log-rank fill terms
    addresses: tuple[int, int, int, int]


@lru_cache(maxsize=64)
def _tables(widths: tuple[int, ...], weights: tuple[float, ...]) -> _Tables:
    src, rank = _entry_layout(widths)
    terms = _rrf_terms(weights, max(widths, default=0))
    log_ranks = _log_rank_table(widths, terms.shape[1])
    src, rank = (np.ascontiguousarray(a, np.int64) for a in (src, rank))
    where = [int(a.ctypes.data) for a in (src, rank, terms, log_ranks)]
    return _Tables(src, rank, terms, log_ranks, (where[0], where[1], where[2], where[3]))


@lru_cache(maxsize=64)
def _log_rank_table(widths: tuple[int, ...], m1: int) -> np.ndarray:
    """(S, m1) float64: :func:`log_rank` of rank r of source s at [s, r] (r = 0: unlisted),
    the C merge's lookup for the log-rank fill. Read-only, shared."""
    ranks = np.arange(m1)
    table = np.stack([log_rank(ranks, w) for w in widths]) if widths else np.zeros((0, m1))
    table = np.ascontiguousarray(table, dtype=np.float64)
    table.flags.writeable = False
    return table


@lru_cache(maxsize=64)
def _quota_sizes(quotas: tuple[tuple[str, float], ...], total: int) -> dict[str, int]:
    """:func:`quota_sizes` of the (fixed) quotas, worked out once per split; read only."""
    return quota_sizes(dict(quotas), total)


@lru_cache(maxsize=64)
def _entry_layout(widths: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(S*M,) source and 1-based rank of each entry of a row's concatenated lists; read-only,
    as they are shared by every request with these widths."""
    src = np.repeat(np.arange(len(widths)), widths)
    rank = np.concatenate([np.arange(1, m + 1) for m in widths])
    src.flags.writeable = rank.flags.writeable = False
    return src, rank


@lru_cache(maxsize=64)
def _rrf_terms(weights: tuple[float, ...], width: int) -> np.ndarray:
    """(S, width + 1) float64: ``w_s / (RRF_K + rank)`` at column ``rank`` (1-based), 0 at
    column 0 (not listed). Read-only, shared by every request: a lookup per candidate instead
    of a division, with the same float64 values the division gives."""
    ranks = np.arange(width + 1, dtype=np.float64)  # (width + 1,)
    terms = np.asarray(weights, dtype=np.float64)[:, None] / (RRF_K + ranks)  # (S, width + 1)
    terms[:, 0] = 0.0
    terms.flags.writeable = False
    return terms


def _best_fused(rrf: np.ndarray, free: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` of the ``free`` candidates (ascending ids) a stable sort by fused score
    would put first: the best scores, the lower ids among equal ones at the cut."""
    if n >= len(free):
        return free
    scores = rrf[free]  # (F,)
    cut = np.partition(scores, len(free) - n)[len(free) - n]  # the n-th best score
    above = free[scores > cut]
    return np.concatenate([above, free[scores == cut][: n - len(above)]])


def _best_log_rank(
    ranks: np.ndarray, weights: np.ndarray, widths: Sequence[int], taken: np.ndarray, n: int
) -> np.ndarray:
    """The ``n`` candidates not ``taken`` with the lowest ``sum_s w_s log(rank_s)`` (unlisted:
    rank 2 * the list's width); ties go to the lower id. ``ranks`` (S, C) as in ``merge``."""
    cost = np.arange(ranks.shape[1], dtype=np.float64) * 1e-9  # (C,) ties: lower id first
    for s, rank_s in enumerate(ranks):
        if weights[s]:
            cost += weights[s] * log_rank(rank_s, widths[s])
    free = np.flatnonzero(~taken)
    if n >= len(free):
        return free
    # only which n, not their order, matters: a partition, not a sort
    return free[np.argpartition(cost[free], n - 1)[:n]]


def log_rank(ranks: np.ndarray, width: int | np.ndarray) -> np.ndarray:
    """``log(rank)`` of the log-rank fill, an unlisted item (rank 0) counting as rank
    ``2 * width`` (its list's length): the one place that convention lives."""
    return np.log(np.where(ranks > 0, ranks, 2 * np.asarray(width)))
