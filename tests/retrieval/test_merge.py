"""The quota merge: guarantees, de-duplication, provenance, fused order."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.retrieval.merge import CandidateBatch, SourceLists, merge, quota_sizes


def lists(*rows: list[int]) -> SourceLists:
    ids = np.array(rows, dtype=np.int64)
    scores = np.where(ids >= 0, -np.arange(ids.shape[1], dtype=np.float32), -np.inf)
    return SourceLists(ids, scores.astype(np.float32))


def test_quota_sizes_add_up() -> None:
    assert quota_sizes({"a": 1, "b": 1, "c": 1}, 10) == {"a": 4, "b": 3, "c": 3}
    assert sum(quota_sizes({"a": 0.3, "b": 0.7}, 7).values()) == 7
    with pytest.raises(ValueError, match="non-negative"):
        quota_sizes({"a": -1.0}, 5)
    with pytest.raises(ValueError, match="all be zero"):
        quota_sizes({"a": 0.0}, 5)


def test_each_source_keeps_its_quota_and_items_are_unique() -> None:
    # source a is "louder" (bigger weight) but b still gets its top 2 in
    a = lists([1, 2, 3, 4, 5, 6])
    b = lists([7, 8, 9, 1, 2, 3])
    out = merge({"a": a, "b": b}, {"a": 2, "b": 1}, total=6, weights={"a": 10.0, "b": 0.1})
    ids = out.ids[0].tolist()
    assert len(set(ids)) == 6
    assert {7, 8} <= set(ids), "b's quota of 2 is guaranteed"
    assert ids[0] == 1, "found by both, first in a"
    assert out.found_by(0, 0) == ["a", "b"]
    slot = ids.index(7)
    assert out.source_ranks[0, slot].tolist() == [0, 1]
    assert np.isnan(out.source_scores[0, slot, 0]) and out.source_scores[0, slot, 1] == 0.0


def test_short_lists_pad_and_cold_rows_stay_empty() -> None:
    a = lists([1, 2, -1, -1], [-1, -1, -1, -1])
    b = lists([2, 3, -1, -1], [-1, -1, -1, -1])
    out = merge({"a": a, "b": b}, {"a": 1, "b": 1}, total=5)
    assert out.ids[0].tolist()[:3] == [2, 1, 3] and out.ids[0, 3:].tolist() == [-1, -1]
    assert (out.ids[1] == -1).all()


def test_the_log_rank_fill_prefers_an_item_both_sources_rank_fairly_high() -> None:
    # item 100 heads a, item 300 heads b, item 200 is 20th in both (lists 50 deep)
    a = [100, *range(1, 19), 200, *range(19, 50)]
    b = [300, *range(51, 69), 200, *range(69, 100)]
    srcs = {"a": lists(a), "b": lists(b)}
    assert a.index(200) == b.index(200) == 19
    quotas = {"a": 1.0, "b": 1.0}
    # RRF: 2/(60+20) for 200 beats 1/(60+1); log-rank: 2 log 20 loses to log 1 + log 100
    rrf = merge(srcs, quotas, total=1, guaranteed=0)
    logrank = merge(srcs, quotas, total=1, guaranteed=0, fill={"a": 1.0, "b": 1.0})
    assert rrf.ids[0].tolist() == [200] and logrank.ids[0].tolist() == [100]
    # the fill picks (a's second item, log 2 + log 100, still beats 2 log 20), RRF orders
    three = merge(srcs, quotas, total=3, guaranteed=0, fill={"a": 1.0, "b": 1.0})
    assert three.ids[0].tolist() == [100, 300, 1]
    assert (np.diff(three.fused[0]) <= 0).all()
    # a zero weight ignores that source's ranks
    only_b = merge(srcs, quotas, total=1, guaranteed=0, fill={"a": 0.0, "b": 1.0})
    assert only_b.ids[0].tolist() == [300]
    with pytest.raises(ValueError, match=r"guaranteed must be in \[0, total=1\], got 2"):
        merge(srcs, quotas, total=1, guaranteed=2)


def test_merge_rejects_missing_quota() -> None:
    with pytest.raises(ValueError, match=r"no quota for source\(s\) \['b'\]"):
        merge({"a": lists([1]), "b": lists([2])}, {"a": 1.0}, total=2)


def test_batches_split_into_rows_and_stack_back_only_when_they_match() -> None:
    ids = np.arange(12, dtype=np.int64).reshape(3, 4)
    batch = CandidateBatch(
        ("a", "b"), ids, ids.astype(np.float32), np.zeros((3, 4, 2), np.float32),
        np.ones((3, 4, 2), np.int32),
    )  # fmt: skip
    rows = [batch.rows(i, i + 1) for i in range(3)]
    again = CandidateBatch.stack(rows)
    for name in ("ids", "fused", "source_scores", "source_ranks"):
        np.testing.assert_array_equal(getattr(again, name), getattr(batch, name))
    head = ids[:1, :2]
    narrow = CandidateBatch(
        ("a", "b"), head, head.astype(np.float32), np.zeros((1, 2, 2), np.float32),
        np.ones((1, 2, 2), np.int32),
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"widths \[\(2,\)\] with \(4,\).*same sources and width"):
        CandidateBatch.stack([rows[0], narrow])


def _reference_merge(
    lists: dict[str, SourceLists], quotas: dict[str, float], total: int, row: int
) -> list[int]:
    """The merge of one request spelled out: best rank per (item, source), quota guarantees,
    fill by fused score, order by fused score, ties to the lower id."""
    names = list(lists)
    sizes = quota_sizes(quotas, total)
    best: dict[int, dict[str, int]] = {}
    for name in names:
        for rank, item in enumerate(lists[name].ids[row].tolist(), start=1):
            if item >= 0:
                best.setdefault(item, {}).setdefault(name, rank)
    rrf = {i: sum(quotas[n] / (60.0 + r) for n, r in by.items()) for i, by in best.items()}
    chosen = {i for i, by in best.items() if any(r <= sizes[n] for n, r in by.items())}
    rest = sorted(set(best) - chosen, key=lambda i: (-rrf[i], i))
    chosen |= set(rest[: max(total - len(chosen), 0)])
    return sorted(chosen, key=lambda i: (-rrf[i], i))[:total]


def test_merge_matches_its_spelled_out_definition_on_random_lists() -> None:
    rng = np.random.default_rng(7)
    quotas = {"a": 0.5, "b": 0.3, "c": 0.2}
    for trial in range(20):
        batch, width = 3, int(rng.integers(5, 40))
        lists = {}
        for name in quotas:
            ids = rng.integers(0, 60, size=(batch, width))  # repeats within a list included
            ids[rng.random((batch, width)) < 0.2] = -1
            lists[name] = SourceLists(ids, rng.random((batch, width)).astype(np.float32))
        total = int(rng.integers(1, 50))
        got = merge(lists, quotas, total, list(quotas))
        for row in range(batch):
            want = _reference_merge(lists, quotas, total, row)
            assert got.ids[row, : len(want)].tolist() == want, (trial, row)
            assert (got.ids[row, len(want) :] == -1).all()
