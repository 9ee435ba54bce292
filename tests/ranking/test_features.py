"""Ranking rows from merged candidates: layout, request-time features, labels, reordering."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest

from features.tables import ITEM_FEATURES, USER_FEATURES
from recsys.data.sequences import Sequences
from recsys.ranking.features import CONTEXT_FEATURES, DEFAULT_CONTEXT, FrameSpec, build_frame
from recsys.ranking.frame import RankingFrame, group_ndcg
from recsys.ranking.ranker import reorder
from recsys.retrieval.merge import CandidateBatch

CAT = ITEM_FEATURES.index("category_code")
BRAND = ITEM_FEATURES.index("brand_code")
PRICE = ITEM_FEATURES.index("price")


class Stored:
    """Stored features held in memory: a stand-in for the online store in pure-logic tests
    (tests/features and tests/ranking/test_bundle.py run the real Feast store)."""

    def __init__(self, items: np.ndarray) -> None:
        self.items = items

    def items_at(self, idx: np.ndarray) -> np.ndarray:
        return self.items[idx]

    def users(self, user_ids: Sequence[str]) -> np.ndarray:
        return np.full((len(user_ids), len(USER_FEATURES)), 7.0, np.float32)


def _setup() -> tuple[FrameSpec, CandidateBatch, Sequences, Stored]:
    items = np.zeros((6, len(ITEM_FEATURES)), np.float32)
    items[:, CAT] = [1, 1, 2, 2, 0, 1]  # item 4: unknown category
    items[:, BRAND] = [1, 2, 1, 2, 1, 1]
    items[:, PRICE] = [10, 20, 30, np.nan, 10, 40]
    spec = FrameSpec.fit(("a", "b"), 6, items)
    batch = CandidateBatch(
        sources=("a", "b"),
        ids=np.array([[3, 1, -1], [2, -1, -1]]),
        fused=np.array([[0.5, 0.4, 0.0], [0.9, 0.0, 0.0]], np.float32),
        source_scores=np.array(
            [
                [[1.0, np.nan], [0.5, 2.0], [np.nan] * 2],
                [[np.nan, 3.0], [np.nan] * 2, [np.nan] * 2],
            ],
            np.float32,
        ),
        source_ranks=np.array([[[1, 0], [2, 1], [0, 0]], [[0, 1], [0, 0], [0, 0]]], np.int32),
    )
    # user 0 saw items 0 (cat 1) then 2 (cat 2); user 1 saw item 5 (cat 1)
    hist = Sequences(np.array([0, 2, 3]), np.array([0, 2, 5], np.int32),
                     np.arange(3), np.zeros(3, np.int8), 6)  # fmt: skip
    return spec, batch, hist, Stored(items)


def test_rows_layout_and_request_time_features() -> None:
    spec, batch, hist, stored = _setup()
    frame = build_frame(spec, batch, hist, ["u0", "u1"], stored, targets=np.array([1, 4]))
    assert frame.group.tolist() == [2, 1] and frame.item.tolist() == [3, 1, 2]
    assert frame.sparse[:, 0].tolist() == [4, 2, 3]  # item index + 1
    assert frame.label is not None and frame.label.tolist() == [0.0, 1.0, 0.0]
    col = {n: i for i, n in enumerate(frame.dense_names)}
    assert frame.dense[:, col["rr_a"]].tolist() == [1.0, 0.5, 0.0]
    assert frame.dense[:, col["rr_b"]].tolist() == [0.0, 1.0, 1.0]
    assert np.isnan(frame.dense[0, col["score_b"]]) and frame.dense[1, col["score_b"]] == 2.0
    assert frame.dense[:, col["n_sources"]].tolist() == [1, 2, 1]
    # item 3 (cat 2): half of user 0's history is cat 2, and so is the latest item
    assert frame.dense[:, col["cat_share"]].tolist() == [0.5, 0.5, 0.0]
    assert frame.dense[:, col["last_cat"]].tolist() == [1.0, 0.0, 0.0]
    assert frame.dense[:, col["hist_len"]].tolist() == [2, 2, 1]
    assert np.isnan(frame.dense[0, col["price_ratio"]])  # item 3 has no price
    assert frame.dense[1, col["price_ratio"]] == pytest.approx(20 / 20)  # median(10, 30)
    assert (frame.dense[:, col["user_n_items"]] == 7.0).all()
    assert len(frame.dense_names) == 4 + len(DEFAULT_CONTEXT) + 24


def _all_columns(spec: FrameSpec) -> FrameSpec:
    return FrameSpec(spec.sources, spec.cardinality, CONTEXT_FEATURES)


def test_recency_features_count_items_since_the_category_and_brand_were_seen() -> None:
    default, batch, hist, stored = _setup()
    spec = FrameSpec(default.sources, default.cardinality, (*DEFAULT_CONTEXT, "cat_recency",
                                                            "brand_recency"))  # fmt: skip
    frame = build_frame(spec, batch, hist, ["u0", "u1"], stored)
    col = {n: i for i, n in enumerate(frame.dense_names)}
    # user 0 saw item 0 (cat 1, brand 1) then item 2 (cat 2, brand 1); user 1 saw item 5
    # (cat 1, brand 1). Candidates: item 3 (cat 2, brand 2), item 1 (cat 1, brand 2); item 2.
    assert frame.dense[:, col["cat_recency"]].tolist() == [1.0, 0.5, 0.0]
    assert frame.dense[:, col["brand_recency"]].tolist() == [0.0, 0.0, 1.0]


def test_link_columns_are_the_batch_co_visitation_links() -> None:
    default, batch, hist, stored = _setup()
    spec = _all_columns(default)
    assert default.links == 0 and spec.links == 3
    col = {n: i for i, n in enumerate(spec.dense_names)}
    with pytest.raises(
        ValueError,
        match="reads co-visitation links from 3 latest items, the "
        r"candidates carry 0: retrieve them with RetrievalConfig\(links=3\)",
    ):
        build_frame(spec, batch, hist, ["u0", "u1"], stored)
    links = np.zeros((2, 3, 3), np.float32)
    links[0, 1] = [0.5, 0.25, 0.0]  # user 0's candidate item 1
    links[1, 0, 0] = 2.0  # user 1's candidate item 2, from their latest item
    linked = build_frame(spec, dataclasses.replace(batch, links=links), hist, ["u0", "u1"], stored)
    got = linked.dense[:, [col["link_1"], col["link_2"], col["link_3"]]]
    assert got.tolist() == [[0.0, 0.0, 0.0], [0.5, 0.25, 0.0], [2.0, 0.0, 0.0]]


def test_a_spec_gets_exactly_the_context_columns_it_was_trained_on() -> None:
    spec, batch, hist, stored = _setup()
    assert spec.context == DEFAULT_CONTEXT
    links = np.ones((2, 3, 3), np.float32)
    linked = dataclasses.replace(batch, links=links)
    full = build_frame(_all_columns(spec), linked, hist, ["u0", "u1"], stored)
    old = build_frame(spec, batch, hist, ["u0", "u1"], stored)
    assert "cat_recency" not in old.dense_names and "link_1" not in old.dense_names
    assert len(full.dense_names) - len(old.dense_names) == len(CONTEXT_FEATURES) - 10
    kept = [full.dense_names.index(n) for n in old.dense_names]
    np.testing.assert_array_equal(old.dense, full.dense[:, kept])
    with pytest.raises(ValueError, match=r"unknown context feature\(s\) \['bogus'\]"):
        FrameSpec(spec.sources, spec.cardinality, ("bogus",))


def test_mismatched_sources_and_rows_are_refused() -> None:
    spec, batch, hist, stored = _setup()
    other = FrameSpec(("a", "c"), spec.cardinality)
    with pytest.raises(ValueError, match=r"sources \['a', 'b'\].*trained on \['a', 'c'\]"):
        build_frame(other, batch, hist, ["u0", "u1"], stored)
    with pytest.raises(ValueError, match="one of each per request"):
        build_frame(spec, batch, hist, ["u0"], stored)
    with pytest.raises(ValueError, match="sparse codes out of range"):
        RankingFrame(np.zeros((1, 0), np.float32), (), np.array([[5]]), ("x",), (3,),
                     np.array([1]), np.array([0]))  # fmt: skip


def test_reorder_sorts_filled_slots_and_keeps_padding_last() -> None:
    spec, batch, hist, stored = _setup()
    ranked = reorder(batch, np.array([0.1, 0.9, 0.5], np.float32))
    assert ranked.ids.tolist() == [[1, 3, -1], [2, -1, -1]]
    assert ranked.order.tolist()[0] == [1, 0, 2]
    frame = build_frame(spec, batch, hist, ["u0", "u1"], stored, targets=np.array([1, 2]))
    assert group_ndcg(np.array([0.1, 0.9, 0.5]), frame) == pytest.approx(1.0)
    assert group_ndcg(np.array([0.9, 0.1, 0.5]), frame) == pytest.approx((1 / np.log2(3) + 1) / 2)


@pytest.mark.parametrize(
    "context",
    [
        DEFAULT_CONTEXT,
        (*DEFAULT_CONTEXT, "cat_recency", "brand_recency"),
        CONTEXT_FEATURES,
        ("price_ratio", "brand_recency", "cat_share", "last_brand"),  # not a prefix: a scratch
    ],
)
def test_the_c_history_columns_are_the_numpy_ones_bit_for_bit(
    context: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    from recsys.native import context as native_context

    if not native_context.available():
        pytest.skip("the C context kernel is not built here (no C compiler)")
    rng = np.random.default_rng(len(context))
    n_items, n_users, width = 400, 12, 30
    items = np.zeros((n_items, len(ITEM_FEATURES)), np.float32)
    items[:, CAT] = rng.integers(0, 9, n_items)  # 0: unknown
    items[:, ITEM_FEATURES.index("category_top_code")] = rng.integers(0, 4, n_items)
    items[:, BRAND] = rng.integers(0, 30, n_items)
    items[rng.random(n_items) < 0.1, BRAND] = np.nan  # unknown codes
    items[:, PRICE] = rng.lognormal(3, 1, n_items).astype(np.float32)
    odd = rng.choice(n_items, 60, replace=False)
    items[odd, PRICE] = rng.choice([np.nan, np.inf, 0.0, -0.0, -5.0], 60)
    fitted = FrameSpec.fit(("a", "b"), n_items, items)
    # a brand table smaller than the catalog's codes: the edge code stands for the rest
    card = (*fitted.cardinality[:3], 12)
    spec = FrameSpec(("a", "b"), card, context)
    lengths = rng.integers(0, 40, n_users)
    lengths[[0, 5]] = 0  # users without history
    total = int(lengths.sum())
    hist = Sequences(np.r_[0, np.cumsum(lengths)], rng.integers(0, n_items, total),
                     np.arange(total), np.zeros(total, np.int8), n_items)  # fmt: skip
    ids = rng.integers(0, n_items, (n_users, width))
    ids[rng.random((n_users, width)) < 0.2] = -1
    ids[3] = -1  # a request without candidates
    batch = CandidateBatch(
        sources=("a", "b"),
        ids=ids,
        fused=rng.random((n_users, width)).astype(np.float32),
        source_scores=rng.random((n_users, width, 2)).astype(np.float32),
        source_ranks=rng.integers(0, 50, (n_users, width, 2)).astype(np.int32),
        links=rng.random((n_users, width, 3)).astype(np.float32),
    )
    users = [f"u{i}" for i in range(n_users)]
    compiled = build_frame(spec, batch, hist, users, Stored(items))
    monkeypatch.setattr(native_context, "_kernel", lambda: None)
    assert not native_context.available()
    expected = build_frame(spec, batch, hist, users, Stored(items))
    assert compiled.dense_names == expected.dense_names
    assert compiled.dense.tobytes() == expected.dense.tobytes()  # NaN payloads included
    np.testing.assert_array_equal(compiled.sparse, expected.sparse)
