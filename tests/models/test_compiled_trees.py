"""Compiled trees (lleaves): the scores native LightGBM gives, a cache keyed to the machine and
compiler, and the runtime setting that picks compiled trees, ONNX Runtime or native scoring."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lleaves")

from models import compiled_trees
from models.compiled_trees import CompiledTrees, cache_file, compiler_key
from models.lgbm_ranker import LGBMRanker, LGBMRankerConfig
from models.onnx_runtime import OnnxSession
from models.ranker_runtime import (
    COMPILED_DIR,
    RankerRuntimeSettings,
    compile_and_check,
    get_runtime_settings,
    open_scorer,
)
from recsys.ranking.frame import RankingFrame


def make_frame(groups: int, seed: int, size: int = 30) -> RankingFrame:
    rng = np.random.default_rng(seed)
    n = groups * size
    quality = rng.normal(size=n).astype(np.float32)
    user_cat = np.repeat(rng.integers(1, 5, groups), size)
    cat = rng.integers(1, 5, n)
    utility = quality + 2.0 * (cat == user_cat)
    label = np.zeros(n, np.float32)
    for g in range(groups):
        label[g * size + int(np.argmax(utility[g * size : (g + 1) * size]))] = 1.0
    quality[rng.random(n) < 0.1] = np.nan  # the MISSING sentinel path too
    dense = np.column_stack([quality, user_cat.astype(np.float32), rng.normal(size=(n, 3))])
    sparse = np.column_stack([np.arange(n) % 50 + 1, cat]).astype(np.int64)
    return RankingFrame(dense.astype(np.float32), ("quality", "user_cat", "n1", "n2", "n3"),
                        sparse, ("item", "category"), (51, 5), np.full(groups, size, np.int64),
                        np.arange(n) % 50, label)  # fmt: skip


@pytest.fixture(scope="module")
def fitted() -> LGBMRanker:
    return LGBMRanker(LGBMRankerConfig(n_estimators=120, threads=1)).fit(make_frame(300, 0))


@pytest.fixture()
def trees(fitted: LGBMRanker, tmp_path: Path) -> Path:
    return fitted.export_trees(tmp_path / "rankers" / "lightgbm.txt")


def test_compiled_scores_equal_native(fitted: LGBMRanker, trees: Path) -> None:
    test = make_frame(40, 1)
    native = fitted.predict(test)
    compiled = CompiledTrees(trees, cache_dir=None).run(fitted.onnx_feeds(test))
    assert compiled.dtype == np.float32 and compiled.shape == native.shape
    assert float(np.abs(compiled - native).max()) <= 1e-5
    assert np.std(native) > 0.1  # a forest that learnt something, not a constant


def test_the_direct_call_gives_lleaves_own_scores(fitted: LGBMRanker, trees: Path) -> None:
    x = fitted.onnx_feeds(make_frame(40, 2))["input"]
    one = CompiledTrees(trees, cache_dir=None)
    assert one._entry is not None  # one thread: the compiled function called directly
    want = np.asarray(one._model.predict(x, n_jobs=1), dtype=np.float32)
    assert one.predict(x).tobytes() == want.tobytes()
    assert one.predict(x[:0]).shape == (0,)
    two = CompiledTrees(trees, cache_dir=None, threads=2)
    assert two._entry is None  # lleaves splits the rows over its threads
    assert two.predict(x).tobytes() == want.tobytes()


def test_cache_is_reused_on_the_same_machine_and_keyed_to_it(
    fitted: LGBMRanker, trees: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "compiled"
    first = CompiledTrees(trees, cache)
    assert first.compiled and first.cache == cache_file(trees, cache)
    assert first.cache is not None and first.cache.is_file()
    assert [p.name for p in cache.iterdir()] == [first.cache.name]  # no temporary left behind
    second = CompiledTrees(trees, cache)
    assert not second.compiled and second.cache == first.cache
    test = make_frame(20, 2)
    assert np.array_equal(second.run(fitted.onnx_feeds(test)), first.run(fitted.onnx_feeds(test)))
    key = compiler_key()
    from importlib import metadata

    assert f"lleaves{metadata.version('lleaves')}" in key
    assert f"llvmlite{metadata.version('llvmlite')}" in key


def test_object_keyed_to_another_compiler_is_recompiled_not_loaded(
    fitted: LGBMRanker, trees: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "compiled"
    monkeypatch.setattr(compiled_trees, "compiler_key", lambda: "linux-x86_64-lleaves0.9")
    old = CompiledTrees(trees, cache)
    assert old.cache is not None
    # garbage under the old key: loading it instead of recompiling would crash or mis-score
    old.cache.write_bytes(b"not an object file")
    monkeypatch.setattr(compiled_trees, "compiler_key", lambda: "linux-x86_64-lleaves1.3")
    new = CompiledTrees(trees, cache)
    assert new.compiled and new.cache is not None and new.cache != old.cache
    test = make_frame(20, 3)
    diff = np.abs(new.run(fitted.onnx_feeds(test)) - fitted.predict(test)).max()
    assert diff <= 1e-5


def test_changed_model_text_is_recompiled(fitted: LGBMRanker, trees: Path, tmp_path: Path) -> None:
    cache = tmp_path / "compiled"
    CompiledTrees(trees, cache)
    other = LGBMRanker(LGBMRankerConfig(n_estimators=20, threads=1, seed=1)).fit(make_frame(80, 5))
    other.export_trees(trees)  # same file name, other trees
    again = CompiledTrees(trees, cache)
    assert again.compiled and len(list(cache.iterdir())) == 2
    test = make_frame(10, 6)
    assert np.abs(again.run(other.onnx_feeds(test)) - other.predict(test)).max() <= 1e-5


def test_bad_feeds_and_missing_files_are_named(trees: Path, tmp_path: Path) -> None:
    model = CompiledTrees(trees, None)
    with pytest.raises(ValueError, match="'input'"):
        model.run({"x": np.zeros((2, 6), np.float32)})
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        CompiledTrees(tmp_path / "nope.txt", None)
    with pytest.raises(ValueError, match="threads"):
        CompiledTrees(trees, None, threads=0)


def test_training_writes_and_checks_the_compiled_model(fitted: LGBMRanker, tmp_path: Path) -> None:
    entry = compile_and_check(fitted, tmp_path, "lightgbm", make_frame(20, 7))
    assert entry["trees"] == "rankers/lightgbm.txt"
    assert entry["trees_max_abs_diff"] <= 1e-5
    assert len(list((tmp_path / COMPILED_DIR).glob("*.o"))) == 1

    class NoTrees:
        pass

    assert compile_and_check(NoTrees(), tmp_path, "dlrm", make_frame(2, 8)) == {}  # type: ignore[arg-type]


def test_runtime_setting_picks_the_scorer(
    fitted: LGBMRanker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fitted.export_trees(tmp_path / "rankers" / "lightgbm.txt")
    fitted.export_onnx(tmp_path / "rankers" / "lightgbm.onnx")
    entry = {"onnx": "rankers/lightgbm.onnx", "trees": "rankers/lightgbm.txt"}
    assert isinstance(open_scorer(tmp_path, entry, "lightgbm", "auto"), CompiledTrees)
    assert isinstance(open_scorer(tmp_path, entry, "lightgbm", "onnx"), OnnxSession)
    assert open_scorer(tmp_path, entry, "lightgbm", "native") is None
    assert isinstance(open_scorer(tmp_path, {"onnx": entry["onnx"]}, "old", "auto"), OnnxSession)
    with pytest.raises(ValueError, match=r"'fast'.*'auto', 'lleaves', 'onnx', 'native'"):
        open_scorer(tmp_path, entry, "lightgbm", "fast")

    monkeypatch.setenv("RECSYS_RANKER_RUNTIME", "onnx")
    get_runtime_settings.cache_clear()
    try:
        assert get_runtime_settings().runtime == "onnx"
        assert isinstance(open_scorer(tmp_path, entry, "lightgbm"), OnnxSession)
    finally:
        get_runtime_settings.cache_clear()
    monkeypatch.setenv("RECSYS_RANKER_RUNTIME", "gpu")
    with pytest.raises(ValueError, match="runtime"):
        RankerRuntimeSettings()


def test_without_lleaves_auto_falls_back_to_onnx_and_lleaves_refuses(
    fitted: LGBMRanker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fitted.export_trees(tmp_path / "rankers" / "lightgbm.txt")
    fitted.export_onnx(tmp_path / "rankers" / "lightgbm.onnx")
    entry = {"onnx": "rankers/lightgbm.onnx", "trees": "rankers/lightgbm.txt"}
    monkeypatch.setattr(compiled_trees, "available", lambda: False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scorer = open_scorer(tmp_path, entry, "lightgbm", "auto")
    assert isinstance(scorer, OnnxSession)
    assert any("lleaves" in str(w.message) for w in caught)
    with pytest.raises(RuntimeError, match=r"lightgbm.*lleaves"):
        open_scorer(tmp_path, entry, "lightgbm", "lleaves")
    assert compile_and_check(fitted, tmp_path, "lightgbm", make_frame(2, 9)) == {}
