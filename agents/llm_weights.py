"""The weights llama.cpp runs: the shipped GGUF file, or the same weights re-encoded once for
this CPU and cached.

The packaged SmolLM2-135M comes as Q4_1. On an AVX2 CPU (these 2-core machines) llama.cpp
evaluates prompts in Q4_1 at about half the speed of Q8_0, while generating at the same speed:
a 417-token rerank prompt took 2.29 s as shipped and 0.85 s as Q8_0 (2 threads), and 53 tokens a
second were generated either way. Re-encoding Q4_1 as Q8_0 loses almost nothing (every Q4_1 value
is a 4-bit step of its block; Q8_0 has 8-bit steps): next-token KL divergence from the shipped
file 0.005-0.014 on three prompts, against 0.38-3.1 for Q4_0. F16 is exact (KL <= 0.007) and as
fast at prompts, but twice the memory and 14% slower to generate.

``RECSYS_LLM_WEIGHTS``: ``auto`` re-encodes the packaged model as Q8_0 (a file you configure is
used as is), ``q8_0`` / ``f16`` re-encode any file, ``as_shipped`` never. The file is written once
to ``RECSYS_LLM_CACHE_DIR`` (default ``~/.cache/recsys/llm``), named by the source's size and
mtime and llama.cpp's version, atomically (workers starting together never read half a file).
Should re-encoding fail, the shipped file is used, with a warning.

A llama.cpp built with its AMX kernels (compiled for a CPU that has AMX, unless built as
``python -m recsys.bootstrap`` builds it) crashes the process in its first quantized matrix
product on some such machines (``ggml_backend_amx_mul_mat``, llama.cpp issue 20824; seen here
with Q8_0 and Q4_1, not with F16, which those kernels do not take). With such a build ``auto``
picks F16 for the packaged model, and a quantized choice gets a warning.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from agents.llm_settings import LLMSettings

Weights = Literal["auto", "as_shipped", "q8_0", "f16"]
WEIGHTS: tuple[str, ...] = ("auto", "as_shipped", "q8_0", "f16")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recsys" / "llm"


def amx_build() -> bool:
    """Whether the installed llama.cpp was built with its AMX kernels (module doc)."""
    import llama_cpp

    return b"AMX_INT8 = 1" in llama_cpp.llama_print_system_info()


def runtime_weights(source: Path, weights: Weights, packaged: bool, cache_dir: Path) -> Path:
    """The file llama.cpp should load for ``source`` under the ``weights`` setting."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r}; valid: {list(WEIGHTS)}")
    amx = amx_build()
    target = ("f16" if amx else "q8_0") if weights == "auto" and packaged else weights
    if amx and target in ("as_shipped", "q8_0"):
        warnings.warn(
            f"weights={weights!r} on a llama.cpp built with AMX kernels, which may crash on "
            "quantized weights (llama.cpp issue 20824): use weights='f16', or rebuild "
            "llama-cpp-python with python -m recsys.bootstrap",
            stacklevel=2,
        )
    if target in ("auto", "as_shipped"):
        return source
    import llama_cpp

    stat = source.stat()
    key = hashlib.sha256(
        f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{llama_cpp.__version__}".encode()
    ).hexdigest()[:16]
    out = cache_dir / f"{source.stem}.{key}.{target}.gguf"
    if out.is_file():
        return out
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        ftype = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16}
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype[target]
        params.allow_requantize = True  # the source is already quantized: re-encode its values
        params.nthread = 1
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".part")
        os.close(fd)
        try:
            rc = llama_cpp.llama_model_quantize(
                str(source).encode(), tmp.encode(), ctypes.byref(params)
            )
            if rc != 0:
                raise RuntimeError(f"llama_model_quantize returned {rc}")
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except Exception as exc:  # any failure: the shipped file still works, only slower
        warnings.warn(
            f"could not re-encode {source} as {target} in {cache_dir} ({exc}); "
            "loading the file as shipped",
            stacklevel=2,
        )
        return source
    return out


def served_weights(settings: LLMSettings | None = None) -> Path:
    """The file llama.cpp loads under ``settings`` (``RECSYS_LLM_*`` when None): the in-process
    backend's, and the one to give ``python -m llama_cpp.server --model``."""
    from agents.llm_settings import LLMSettings, packaged_model

    settings = settings or LLMSettings()
    source = settings.model_path or packaged_model()
    return runtime_weights(
        source, settings.weights, settings.model_path is None,
        settings.cache_dir or default_cache_dir(),
    )  # fmt: skip
