"""LightGBM trees compiled to machine code with lleaves (LLVM), cached next to the model.

A request scores about 500 rows through a few hundred trees: native LightGBM and ONNX Runtime
spend most of that walking node arrays, while the compiled forest is straight-line branches
(6.5x native on this project's request rows, with bit-identical scores).

The compiled object is specific to the machine and the compiler that produced it: MCJIT emits
code for the host CPU's features (an object built on a newer CPU can die with SIGILL on an older
one), and lleaves loads a cached object without any consistency check. So the cache file's name
carries everything it depends on: the model text's digest, the platform, the host CPU and the
lleaves, llvmlite and LLVM versions. A bundle moved to another machine, or served after an
upgrade, finds no file of its key and compiles a fresh one; a stale one is never loaded.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import tempfile
from collections.abc import Mapping
from functools import cached_property, lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

LLEAVES_MISSING = (
    "compiled trees need lleaves: pip install lleaves==1.3.0 'llvmlite<=0.43' "
    "(lleaves 1.3.0 fails with llvmlite 0.44+)"
)
_DOUBLES = ctypes.POINTER(ctypes.c_double)
INPUT = "input"  # the feed name the tree rankers' ONNX models use, so both runtimes share feeds


@lru_cache(maxsize=1)
def available() -> bool:
    """Whether lleaves imports here (it needs a matching llvmlite, checked on compile)."""
    try:
        import lleaves  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def compiler_key() -> str:
    """Everything a compiled object depends on besides the model, as a file-name-safe string."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()  # the host CPU name is unknown before this
    parts = (
        f"{platform.system()}-{platform.machine()}",
        llvm.get_host_cpu_name(),
        f"lleaves{metadata.version('lleaves')}",
        f"llvmlite{metadata.version('llvmlite')}",
        "llvm" + ".".join(map(str, llvm.llvm_version_info)),
    )
    return re.sub(r"[^A-Za-z0-9._-]", "_", "-".join(parts)).lower()


def cache_file(model_file: Path, cache_dir: Path, key: str | None = None) -> Path:
    """Where the object compiled from ``model_file`` under ``key`` (default: this machine's)
    is cached."""
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()[:16]
    return cache_dir / f"{model_file.stem}-{digest}-{key or compiler_key()}.o"


class CompiledTrees:
    """A LightGBM model text compiled by lleaves: ``run(feeds)`` -> (N,) float32 raw scores.

    ``cache_dir`` holds compiled objects by key (see module doc); None compiles in memory.
    ``compiled`` says whether this instance compiled (True) or loaded a cached object (False).
    """

    def __init__(self, model_file: str | Path, cache_dir: str | Path | None, threads: int = 1):
        if not available():
            raise ImportError(LLEAVES_MISSING)
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        import lleaves

        self.model_file = Path(model_file)
        if not self.model_file.is_file():
            raise FileNotFoundError(f"no LightGBM model text at {self.model_file}")
        self.threads = threads
        self._model = lleaves.Model(model_file=str(self.model_file))
        self.cache: Path | None = None
        self.compiled = True
        # raw_score: a ranker's score is the sum of leaf values, as Booster.predict gives for
        # lambdarank; fp64 keeps lleaves' arithmetic equal to LightGBM's
        options: dict[str, Any] = {"raw_score": True, "use_fp64": True}
        if cache_dir is None:
            self._model.compile(**options)
            return
        self.cache = cache_file(self.model_file, Path(cache_dir))
        if self.cache.is_file():
            self._model.compile(cache=str(self.cache), **options)
            self.compiled = False
            return
        self._compile_into(self.cache, options)

    def _compile_into(self, target: Path, options: dict[str, Any]) -> None:
        """Compile, writing the object under a private name first: several workers loading one
        bundle at once each compile, and a reader must never see a half-written object."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=target.name, suffix=".tmp", dir=target.parent)
        except OSError:
            # a read-only bundle (a container image) still serves, compiled in memory
            self._model.compile(**options)
            self.cache = None
            return
        os.close(fd)
        os.unlink(tmp)  # lleaves writes its cache only to a path that does not exist yet
        try:
            self._model.compile(cache=tmp, **options)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    @property
    def providers(self) -> list[str]:
        return ["lleaves"]

    @property
    def input_names(self) -> tuple[str, ...]:
        return (INPUT,)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(N,) float32 scores of an (N, D) matrix, on ``threads`` threads."""
        entry = self._entry
        if entry is not None and x.ndim == 2 and x.shape[1] == self._model.num_feature():
            # what Model.predict does with n_jobs=1 (its checks and conversions cost ~35 us a
            # request against ~150 for the trees): the compiled function over float64 rows
            data = np.ascontiguousarray(x, dtype=np.float64)  # (N, D)
            out = np.empty(len(data), np.float64)  # (N,)
            entry(ctypes.cast(data.ctypes.data, _DOUBLES), ctypes.cast(out.ctypes.data, _DOUBLES),
                  0, len(data))  # fmt: skip
            return out.astype(np.float32)
        return np.asarray(self._model.predict(x, n_jobs=self.threads), dtype=np.float32)

    @cached_property
    def _entry(self) -> Any:
        """The compiled forest's C entry point where a call may take it directly: one thread,
        one output per row, float64 arithmetic (else None: ``Model.predict`` serves)."""
        model = self._model
        if self.threads != 1 or getattr(model, "_n_classes", None) != 1:
            return None
        if not getattr(model, "use_fp64", False) or not getattr(model, "is_compiled", False):
            return None
        return getattr(model, "_c_entry_func", None)

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """Score the same feeds as the ONNX session (``ranker.onnx_feeds(frame)``)."""
        if set(feeds) != {INPUT}:
            raise ValueError(f"compiled trees take one feed {INPUT!r}, got {sorted(feeds)}")
        return self.predict(feeds[INPUT])

    def __repr__(self) -> str:
        return f"CompiledTrees({str(self.model_file)!r}, cache={self.cache})"
