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
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Literal

Weights = Literal["auto", "as_shipped", "q8_0", "f16"]
WEIGHTS: tuple[str, ...] = ("auto", "as_shipped", "q8_0", "f16")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recsys" / "llm"


def runtime_weights(source: Path, weights: Weights, packaged: bool, cache_dir: Path) -> Path:
    """The file llama.cpp should load for ``source`` under the ``weights`` setting."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r}; valid: {list(WEIGHTS)}")
    target = "q8_0" if weights == "auto" and packaged else weights
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
