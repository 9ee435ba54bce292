"""The one contract every registered ranker passes, on a seeded frame with a known answer.

The known answer: in each group of candidates the positive is the row whose dense column
``signal`` is the largest; two dense columns (one with unknown values) and a categorical
column are noise, and the item column is an id. A ranker that learns anything puts the
positive first in most held-out groups, where a random order manages one group in ten.

Rankers are made through the registry with small configurations (``FAST``), so each one fits
in a few seconds; one whose optional module is missing (the DLRM without TorchRec) is skipped.
The registry's own checks, TorchRec's absence simulated, close the file.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.onnx_runtime import OnnxSession
from models.optional import importable
from models.ranker_base import RankerModel
from models.ranker_registry import RANKERS, REQUIRES, available_rankers, check_rankers, make_ranker
from recsys.ranking.frame import RankingFrame, select_groups
from recsys.ranking.train import RankerTrainConfig

ROWS, ITEMS, CATEGORIES = 10, 50, 7
# Small enough for a few seconds a ranker, large enough to learn the answer. The trees see the
# signal column whole (no feature or row sampling) and stop on a quarter of the groups: with
# the defaults, early stopping on 30 noisy groups left 6 trees and top-1 near the 0.8 bar.
FAST: dict[str, dict[str, Any]] = {
    "lightgbm": {
        "n_estimators": 100,
        "learning_rate": 0.1,
        "num_leaves": 63,
        "min_child_samples": 10,
        "feature_fraction": 1.0,
        "bagging_fraction": 1.0,
        "early_stopping_rounds": 100,
        "holdout_groups": 0.25,
        "threads": 1,
    },
    "dlrm": {"epochs": 6, "batch_size": 16, "lr": 1e-2, "threads": 1},
}


def make_frame(seed: int, n_groups: int) -> RankingFrame:
    """Groups of ``ROWS``; label 1 on the row with the group's largest ``signal``."""
    rng = np.random.default_rng(seed)
    n = n_groups * ROWS
    dense = rng.normal(size=(n, 3)).astype(np.float32)  # signal, noise_a, noise_b
    dense[rng.random(n) < 0.1, 2] = np.nan  # unknown values, as real features have
    best = dense[:, 0].reshape(n_groups, ROWS).argmax(axis=1)  # (Q,)
    label = np.zeros(n, np.float32)
    label[np.arange(n_groups) * ROWS + best] = 1.0
    item = rng.integers(ITEMS, size=n)
    sparse = np.stack([item, rng.integers(CATEGORIES, size=n)], axis=1).astype(np.int64)
    return RankingFrame(
        dense=dense,
        dense_names=("signal", "noise_a", "noise_b"),
        sparse=sparse,
        sparse_names=("item", "category"),
        cardinality=(ITEMS, CATEGORIES),
        group=np.full(n_groups, ROWS, dtype=np.int64),
        item=item.astype(np.int64),
        label=label,
    )


def top1(scores: np.ndarray, frame: RankingFrame) -> float:
    """Share of groups whose positive scores highest (ties count against the ranker)."""
    assert frame.label is not None
    grid = scores.reshape(-1, ROWS)  # every group has ROWS rows
    positive = frame.label.reshape(-1, ROWS).argmax(axis=1)
    best = grid[np.arange(len(grid)), positive]
    return float(((grid < best[:, None]).sum(axis=1) == ROWS - 1).mean())


def make(name: str, seed: int = 0) -> RankerModel:
    if name in REQUIRES:
        module = REQUIRES[name][0]
        pytest.importorskip(module, reason=f"{name} needs the optional {module}")
    return make_ranker(name, seed, **FAST.get(name, {}))


@pytest.fixture(scope="module")
def frames() -> tuple[RankingFrame, RankingFrame]:
    return make_frame(0, 300), make_frame(1, 200)


@pytest.fixture(scope="module", params=sorted(RANKERS))
def fitted(request: pytest.FixtureRequest, frames) -> RankerModel:
    train, _ = frames
    return make(request.param).fit(train)


def test_learns_the_known_answer(fitted: RankerModel, frames) -> None:
    _, test = frames
    assert isinstance(fitted, RankerModel)
    assert fitted.name in RANKERS
    scores = fitted.predict(test)
    assert scores.shape == (test.n_rows,) and scores.dtype == np.float32
    assert np.isfinite(scores).all()
    rand = top1(np.random.default_rng(0).random(test.n_rows).astype(np.float32), test)
    assert top1(scores, test) >= 0.8 > rand + 0.5, (top1(scores, test), rand)


def test_same_seed_same_scores(fitted: RankerModel, frames) -> None:
    train, test = frames
    again = make(fitted.name).fit(train)
    np.testing.assert_array_equal(again.predict(test), fitted.predict(test))


def test_onnx_export_scores_as_native(fitted: RankerModel, frames, tmp_path: Path) -> None:
    _, test = frames
    session = OnnxSession(fitted.export_onnx(tmp_path / f"{fitted.name}.onnx"))
    for frame in (test, select_groups(test, np.array([7]))):  # a batch, one request
        diff = np.abs(session.run(fitted.onnx_feeds(frame)) - fitted.predict(frame)).max()
        assert diff <= fitted.onnx_tolerance, diff


def test_pickled_ranker_scores_the_same(fitted: RankerModel, frames) -> None:
    _, test = frames
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(copy.predict(test), fitted.predict(test))


@pytest.mark.parametrize("name", sorted(RANKERS))
def test_unfitted_ranker_refuses_to_score(name: str, frames) -> None:
    _, test = frames
    with pytest.raises(RuntimeError, match="not fitted"):
        make(name).predict(test)


# ---------------------------------------------------------------- the registry


def test_unknown_names_and_fields_are_named() -> None:
    with pytest.raises(ValueError, match=r"unknown ranker\(s\) \['xgb'\].*'dlrm'.*'lightgbm'"):
        make_ranker("xgb")
    with pytest.raises(ValueError, match=r"unknown ranker\(s\) \['xgb'\]"):
        RankerTrainConfig(rankers=("lightgbm", "xgb"))
    with pytest.raises(ValueError, match=r"unknown LGBMRankerConfig field\(s\) \['trees'\]"):
        RankerTrainConfig(rankers=("lightgbm",), options={"lightgbm": {"trees": 3}})


def test_without_torchrec_dlrm_leaves_the_defaults_and_asking_for_it_says_how(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert "dlrm" not in available_rankers(lambda module: module != "torchrec")
    # as an interpreter without TorchRec sees it: every import of it fails
    for module in [m for m in sys.modules if m == "torchrec" or m.startswith("torchrec.")]:
        monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, "torchrec", None)
    assert not importable("torchrec")
    assert available_rankers() == ("lightgbm",)
    assert RankerTrainConfig().rankers == ("lightgbm",)
    for ask in (
        lambda: check_rankers(["lightgbm", "dlrm"]),
        lambda: RankerTrainConfig(rankers=("dlrm",)),
        lambda: make_ranker("dlrm"),
    ):
        with pytest.raises(ValueError, match=r"TorchRec is not installed.*recsys\.bootstrap"):
            ask()
    # the module itself imports, and building its TorchRec net names the fix too
    from models.dlrm import DLRMConfig, build_dlrm

    with pytest.raises(ImportError, match=r"TorchRec is not installed.*recsys\.bootstrap"):
        build_dlrm(DLRMConfig(), dense_dim=3, cardinality=(4,))


def test_a_fresh_interpreter_without_torchrec_imports_the_rankers() -> None:
    code = (
        "import sys; sys.modules['torchrec'] = None; "
        "import models.dlrm, models.dlrm_distributed; "
        "from models.ranker_registry import available_rankers; "
        "assert available_rankers() == ('lightgbm',), available_rankers()"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
