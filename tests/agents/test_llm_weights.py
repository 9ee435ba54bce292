"""The packaged model runs re-encoded as Q8_0 (F16 on a llama.cpp built with its AMX kernels):
written once, atomically, and the same model."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from agents import llm_weights
from agents.llm_settings import LLMSettings, packaged_model
from agents.llm_weights import amx_build, runtime_weights

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def shipped() -> Path:
    pytest.importorskip("llama_cpp", reason="the llm extra (llama-cpp-python) is not installed")
    return packaged_model()


def _next_token(path: Path) -> np.ndarray:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=256, n_threads=1, verbose=False, seed=0)
    llm.eval(llm.tokenize(PROMPT.encode(), add_bos=True))
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
    logits = logits.astype(np.float64)
    return logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))  # (V,)


def test_auto_reencodes_the_packaged_model_once_and_keeps_its_predictions(
    shipped: Path, tmp_path: Path
) -> None:
    amx = amx_build()
    out = runtime_weights(shipped, "auto", packaged=True, cache_dir=tmp_path)
    assert out.parent == tmp_path and out.name.endswith(".f16.gguf" if amx else ".q8_0.gguf")
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no partial file left behind
    written = out.stat().st_mtime_ns
    assert runtime_weights(shipped, "auto", packaged=True, cache_dir=tmp_path) == out
    assert out.stat().st_mtime_ns == written  # reused, not rewritten
    reencoded = _next_token(out)
    if amx:  # the shipped Q4_1 file would take the AMX kernels that crash
        pytest.skip("llama.cpp has its AMX kernels: the shipped file is not evaluated")
    base = _next_token(shipped)
    kl = float(np.sum(np.exp(base) * (base - reencoded)))
    assert kl < 0.05, kl
    assert int(np.argmax(base)) == int(np.argmax(reencoded))


def test_a_configured_file_or_as_shipped_is_loaded_as_is(shipped: Path, tmp_path: Path) -> None:
    assert runtime_weights(shipped, "auto", packaged=False, cache_dir=tmp_path) == shipped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an AMX build warns about the quantized file
        assert runtime_weights(shipped, "as_shipped", packaged=True, cache_dir=tmp_path) == shipped
    assert not list(tmp_path.iterdir())


def test_a_cache_that_cannot_be_written_falls_back_to_the_shipped_file(
    shipped: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"  # a file where the folder must be (permissions bind no root)
    blocked.write_text("")
    with pytest.warns(UserWarning, match="loading the file as shipped"):
        assert runtime_weights(shipped, "q8_0", packaged=True, cache_dir=blocked) == shipped


def test_a_llama_cpp_with_amx_kernels_runs_the_packaged_model_in_f16(
    shipped: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm_weights, "amx_build", lambda: True)
    out = runtime_weights(shipped, "auto", packaged=True, cache_dir=tmp_path)
    assert out.name.endswith(".f16.gguf")
    with pytest.warns(UserWarning, match="AMX kernels"):
        assert runtime_weights(shipped, "as_shipped", packaged=True, cache_dir=tmp_path) == shipped


def test_bad_settings_name_the_valid_values(shipped: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"weights='q2'.*'auto', 'as_shipped', 'q8_0', 'f16'"):
        runtime_weights(shipped, "q2", packaged=True, cache_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="weights"):
        LLMSettings(weights="q2")  # type: ignore[arg-type]
