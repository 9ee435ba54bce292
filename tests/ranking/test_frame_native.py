"""The ranking frame's candidate columns through ``context.c`` (``recsys_frame_rows``) against
their numpy twin (``_candidate_columns``): the same bits, and numpy wherever the kernel declines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from features.tables import ITEM_FEATURES, USER_FEATURES
from recsys.data.sequences import Sequences
from recsys.native import context as native_context
from recsys.ranking.features import CONTEXT_FEATURES, FrameSpec, build_frame
from recsys.ranking.frame import RankingFrame
from recsys.retrieval.merge import CandidateBatch

CAT = ITEM_FEATURES.index("category_code")
TOP = ITEM_FEATURES.index("category_top_code")
BRAND = ITEM_FEATURES.index("brand_code")
PRICE = ITEM_FEATURES.index("price")

pytestmark = pytest.mark.skipif(
    native_context._rows_kernel() is None, reason="the C frame kernel is not built here"
)


class Stored:
    """Stored features in memory, a different row per user (unknown users: NaN rows)."""

    def __init__(self, items: np.ndarray, seed: int) -> None:
        self.items = items
        self.rng = np.random.default_rng(seed)

    def items_at(self, idx: np.ndarray) -> np.ndarray:
        return self.items[idx]

    def users(self, user_ids: Sequence[str]) -> np.ndarray:
        rows = np.stack([np.full(len(USER_FEATURES), float(u[1:]), np.float32) for u in user_ids])
        rows[[u.startswith("x") for u in user_ids]] = np.nan
        return rows


def _world(
    seed: int, width: int = 30, n_users: int = 9, n_sources: int = 3
) -> tuple[np.ndarray, Sequences, CandidateBatch, list[str]]:
    rng = np.random.default_rng(seed)
    n_items = 300
    items = rng.normal(0, 100, (n_items, len(ITEM_FEATURES))).astype(np.float32)
    items[:, CAT] = rng.integers(0, 15, n_items)
    items[:, TOP] = rng.integers(0, 4, n_items) + 0.75  # truncated toward zero
    items[:, BRAND] = rng.integers(0, 300, n_items)  # past the brand table: its edge
    items[rng.random(n_items) < 0.1, BRAND] = np.nan  # unknown: code 0
    items[rng.random(n_items) < 0.1, CAT] = -0.5  # truncates to 0
    items[rng.random(n_items) < 0.1, PRICE] = np.nan
    lengths = rng.integers(0, 12, n_users)
    total = int(lengths.sum())
    hist = Sequences(np.r_[0, np.cumsum(lengths)], rng.integers(0, n_items, total),
                     np.arange(total), np.zeros(total, np.int8), n_items)  # fmt: skip
    ids = rng.integers(0, n_items, (n_users, width))
    ids[rng.random((n_users, width)) < 0.25] = -1
    ids[min(2, n_users - 1)] = -1  # a request without candidates
    scores = rng.normal(0, 3, (n_users, width, n_sources)).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = np.nan
    ranks = rng.integers(0, 600, (n_users, width, n_sources)).astype(np.int32)
    ranks[rng.random(ranks.shape) < 0.3] = 0
    batch = CandidateBatch(
        sources=tuple("abc"[:n_sources]),
        ids=ids,
        fused=rng.random((n_users, width)).astype(np.float32),
        source_scores=scores,
        source_ranks=ranks,
        links=rng.random((n_users, width, 3)).astype(np.float32),
    )
    users = [f"{'x' if i == 4 else 'u'}{i}" for i in range(n_users)]
    return items, hist, batch, users


def _both(
    monkeypatch: pytest.MonkeyPatch, *args: object, **kw: object
) -> tuple[RankingFrame, RankingFrame]:
    compiled = build_frame(*args, **kw)  # type: ignore[arg-type]
    with monkeypatch.context() as m:
        m.setattr(native_context, "_rows_kernel", lambda: None)
        expected = build_frame(*args, **kw)  # type: ignore[arg-type]
    return compiled, expected


def _same(a: RankingFrame, b: RankingFrame) -> None:
    assert a.dense_names == b.dense_names
    assert a.dense.tobytes() == b.dense.tobytes()  # NaN payloads included
    assert a.sparse.dtype == b.sparse.dtype == np.int64
    np.testing.assert_array_equal(a.sparse, b.sparse)
    np.testing.assert_array_equal(a.group, b.group)
    np.testing.assert_array_equal(a.item, b.item)


@pytest.mark.parametrize(
    "context",
    [
        CONTEXT_FEATURES[:10],  # the default: written in place
        CONTEXT_FEATURES,  # recency and links too
        ("position", "link_2", "n_sources", "fused"),  # not a prefix: through a scratch
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_the_c_frame_is_the_numpy_frame_bit_for_bit(
    context: tuple[str, ...], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    items, hist, batch, users = _world(seed)
    fitted = FrameSpec.fit(batch.sources, len(items), items)
    spec = FrameSpec(batch.sources, (*fitted.cardinality[:3], 40), context)  # brands past 40
    compiled, expected = _both(monkeypatch, spec, batch, hist, users, Stored(items, seed))
    _same(compiled, expected)
    assert np.isnan(compiled.dense[:, -1]).any()  # the unknown user's row is NaN
    assert set(np.unique(compiled.group)) != {0}


def test_training_rows_with_a_keep_mask_and_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    items, hist, batch, users = _world(7, width=50)
    spec = FrameSpec.fit(batch.sources, len(items), items)
    rng = np.random.default_rng(7)
    keep = rng.random(batch.ids.shape) < 0.4
    targets = batch.ids[:, 3]
    compiled, expected = _both(monkeypatch, spec, batch, hist, users, Stored(items, 7),
                               targets=targets, keep=keep)  # fmt: skip
    _same(compiled, expected)
    assert compiled.label is not None and expected.label is not None
    np.testing.assert_array_equal(compiled.label, expected.label)


def test_one_request_of_one_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    items, hist, batch, users = _world(3, width=1, n_users=1, n_sources=1)
    batch.ids[0, 0] = 5
    spec = FrameSpec.fit(batch.sources, len(items), items)
    _same(*_both(monkeypatch, spec, batch, hist, users, Stored(items, 3)))


def _arguments(n_requests: int = 2, width: int = 4, n_sources: int = 2) -> dict[str, object]:
    rows = n_requests * width
    d_item, d_user = len(ITEM_FEATURES), len(USER_FEATURES)
    item_at = 2 * n_sources + 10
    dense = np.zeros((rows, item_at + d_item + d_user), np.float32)
    return {
        "b_idx": np.repeat(np.arange(n_requests), width),
        "slot": np.tile(np.arange(width), n_requests),
        "items": np.arange(rows, dtype=np.int64),
        "ranks": np.ones((n_requests, width, n_sources), np.int32),
        "scores": np.ones((n_requests, width, n_sources), np.float32),
        "fused": np.ones((n_requests, width), np.float32),
        "item_feats": np.ones((rows, d_item), np.float32),
        "user_feats": np.ones((n_requests, d_user), np.float32),
        "code_cols": (CAT, TOP, BRAND),
        "cardinality": (rows + 1, 5, 5, 5),
        "dense": dense,
        "item_at": item_at,
        "context": dense[:, 2 * n_sources : item_at],
        "sparse": np.zeros((rows, 4), np.int64),
        "cand_codes": np.zeros((rows, 3), np.int64),
        "starts": np.zeros(n_requests, np.int64),
        "ends": np.zeros(n_requests, np.int64),
    }


def _frame_rows(args: dict[str, object]) -> bool:
    """``frame_rows`` with the seven output entries of ``args`` as its ``out``."""
    given = dict(args)
    names = native_context.FrameColumns._fields
    out = native_context.FrameColumns(*(given.pop(name) for name in names))  # type: ignore[arg-type]
    return native_context.frame_rows(**given, out=out)  # type: ignore[arg-type]


def test_the_kernel_writes_what_it_is_given() -> None:
    args = _arguments()
    assert _frame_rows(args)
    np.testing.assert_array_equal(args["starts"], [0, 4])
    np.testing.assert_array_equal(args["ends"], [4, 8])
    np.testing.assert_array_equal(args["sparse"][:, 1:], 1)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    "change",
    [
        "unsorted requests",
        "request out of range",
        "slot out of range",
        "infinite code",
        "code past int64",
        "int64 ranks",
        "float64 scores",
        "layout that does not add up",
        "code column out of range",
        "strided dense",
        "three cardinalities",
    ],
)
def test_odd_input_is_left_to_numpy_with_nothing_written(change: str) -> None:
    args = _arguments()
    b_idx, slot = args["b_idx"], args["slot"]
    feats, dense = args["item_feats"], args["dense"]
    assert isinstance(b_idx, np.ndarray) and isinstance(slot, np.ndarray)
    assert isinstance(feats, np.ndarray) and isinstance(dense, np.ndarray)
    if change == "unsorted requests":
        args["b_idx"] = b_idx[::-1].copy()
    elif change == "request out of range":
        b_idx[-1] = 2
    elif change == "slot out of range":
        slot[0] = -1
    elif change == "infinite code":
        feats[3, BRAND] = np.inf
    elif change == "code past int64":
        feats[3, CAT] = 1e19
    elif change == "int64 ranks":
        args["ranks"] = np.ones((2, 4, 2), np.int64)
    elif change == "float64 scores":
        args["scores"] = np.ones((2, 4, 2), np.float64)
    elif change == "layout that does not add up":
        args["item_at"] = 13
    elif change == "code column out of range":
        args["code_cols"] = (CAT, TOP, len(ITEM_FEATURES))
    elif change == "strided dense":
        args["dense"] = np.zeros((16, dense.shape[1]), np.float32)[::2]
    elif change == "three cardinalities":
        args["cardinality"] = (9, 5, 5)
    assert not _frame_rows(args)
    assert not np.asarray(args["dense"]).any()
    assert not np.asarray(args["sparse"]).any() and not np.asarray(args["starts"]).any()
