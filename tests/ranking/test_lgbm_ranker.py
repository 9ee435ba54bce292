"""LightGBM LambdaRank: learns a known answer, exports to ONNX with equal scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.lgbm_ranker import LGBMRanker, LGBMRankerConfig
from models.onnx_runtime import OnnxSession
from recsys.ranking.frame import RankingFrame, group_ndcg


def make_frame(groups: int, seed: int, size: int = 30) -> RankingFrame:
    """The positive is the row whose category matches the user's and whose quality is best;
    a NaN quality counts as average."""
    rng = np.random.default_rng(seed)
    n = groups * size
    quality = rng.normal(size=n).astype(np.float32)
    noise = rng.normal(size=(n, 3)).astype(np.float32)
    user_cat = np.repeat(rng.integers(1, 5, groups), size)
    cat = rng.integers(1, 5, n)
    utility = quality + 2.0 * (cat == user_cat)
    label = np.zeros(n, np.float32)
    for g in range(groups):
        label[g * size + int(np.argmax(utility[g * size : (g + 1) * size]))] = 1.0
    quality[rng.random(n) < 0.1] = np.nan
    dense = np.column_stack([quality, user_cat.astype(np.float32), noise])
    sparse = np.column_stack([np.arange(n) % 50 + 1, cat]).astype(np.int64)
    return RankingFrame(dense, ("quality", "user_cat", "n1", "n2", "n3"), sparse,
                        ("item", "category"), (51, 5), np.full(groups, size, np.int64),
                        np.arange(n) % 50, label)  # fmt: skip


@pytest.fixture(scope="module")
def fitted() -> LGBMRanker:
    return LGBMRanker(LGBMRankerConfig(n_estimators=150, threads=1)).fit(make_frame(400, 0))


def test_beats_random_order_on_a_known_answer(fitted: LGBMRanker) -> None:
    test = make_frame(200, 1)
    ndcg = group_ndcg(fitted.predict(test), test)
    random = group_ndcg(np.random.default_rng(2).random(test.n_rows), test)
    assert ndcg > 0.6 and ndcg > 3 * random, (ndcg, random)
    assert "item" not in fitted.feature_names_  # an id is not an ordered quantity


def test_onnx_scores_equal_native(fitted: LGBMRanker, tmp_path: Path) -> None:
    test = make_frame(50, 3)
    session = OnnxSession(fitted.export_onnx(tmp_path / "r.onnx"))
    assert session.providers[-1] == "CPUExecutionProvider"
    diff = np.abs(session.run(fitted.onnx_feeds(test)) - fitted.predict(test)).max()
    assert diff <= 1e-5, diff


def test_bad_frames_and_unfitted_use_are_refused(fitted: LGBMRanker) -> None:
    test = make_frame(5, 4)
    fewer = RankingFrame(test.dense[:, :4], test.dense_names[:4], test.sparse, test.sparse_names,
                         test.cardinality, test.group, test.item, test.label)  # fmt: skip
    with pytest.raises(ValueError, match="differ from the trained ones"):
        fitted.predict(fewer)
    with pytest.raises(RuntimeError, match="not fitted"):
        LGBMRanker().predict(test)
    no_positive = RankingFrame(test.dense, test.dense_names, test.sparse, test.sparse_names,
                               test.cardinality, test.group, test.item,
                               np.zeros(test.n_rows, np.float32))  # fmt: skip
    with pytest.raises(ValueError, match="candidates missed every target"):
        LGBMRanker().fit(no_positive)


def test_mantissa_rounding_on_bits_equals_frexp_rounding() -> None:
    from models.lgbm_ranker import MANTISSA_BITS, _round_mantissa

    rng = np.random.default_rng(7)
    x = (rng.normal(size=200_000) * 10.0 ** rng.integers(-12, 12, 200_000)).astype(np.float32)
    x[:1000] = np.round(x[:1000])  # integer codes
    x[1000:1010] = [0.0, -0.0, -1e9, 1e9, 1.0, 65535.5, 65536.5, 131071.0, 1 + 2**-16, -3.0]
    mantissa, exponent = np.frexp(x)
    scale = 2.0**MANTISSA_BITS
    expected = np.ldexp(np.round(mantissa * scale) / scale, exponent).astype(np.float32)
    got = _round_mantissa(x.copy())
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_the_c_input_matrix_is_the_numpy_one_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    from models import lgbm_ranker
    from recsys.native import columns as native_columns

    if native_columns._kernel() is None:
        pytest.skip("the C columns kernel is not built here (no C compiler)")
    rng = np.random.default_rng(3)
    n, d = 3_000, 12
    # values of every magnitude, random bit patterns (rounding ties included), the specials
    dense = (rng.normal(size=(n, d)) * 10.0 ** rng.integers(-30, 30, (n, d))).astype(np.float32)
    dense[:, 0] = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    dense[:9, 1] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 3.4e38, -3.4e38]
    sparse = rng.integers(0, 2**40, (n, 4))  # codes beyond float32's 24 bits round as numpy's do
    frame = RankingFrame(dense, tuple(f"d{i}" for i in range(d)), sparse,
                         ("item", "category", "top_category", "brand"), (2**41,) * 4,
                         np.array([n]), np.arange(n))  # fmt: skip
    compiled, names = lgbm_ranker._columns(frame)
    monkeypatch.setattr(native_columns, "_kernel", lambda: None)
    expected, numpy_names = lgbm_ranker._columns(frame)
    assert names == numpy_names and compiled.shape == (n, d + 3)
    assert np.array_equal(compiled.view(np.uint32), expected.view(np.uint32))
