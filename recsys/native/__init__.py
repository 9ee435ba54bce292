"""Small C kernels for the request path, compiled with the machine's C compiler and cached.

Some request-path steps are bookkeeping that numpy can only express as a few dozen calls per
request, each with its own overhead. A loop in C does each in one pass: ``merge.c`` (the
sources' lists merged), ``rows.c`` (the co-visitation and attribute sources' score rows),
``topk.c`` (top k of a score row), ``context.c`` (the ranking frame: its candidate and
history-match columns), ``columns.c`` (the tree ranker's input matrix) and ``prefilter.c``
(which vectors can make an exact inner-product top k, from an int8 copy). Every kernel has a
numpy twin that gives the same answer bit for bit (the prefilter's: scoring every vector), and
the tests run both on the same inputs.
Pipelines build them when they are built (:func:`prepare`), so no request waits on a compile.

``RECSYS_NATIVE`` (read on first use):

- ``auto`` (default): compile with ``$CC``, ``cc``, ``gcc`` or ``clang``; where none works, use
  the numpy path (one warning says why).
- ``on``: as auto, but a kernel that cannot be built is an error.
- ``off``: the numpy path always.

Built libraries are cached in ``RECSYS_NATIVE_CACHE`` (default
``$XDG_CACHE_HOME/recsys-engine/native``, else ``~/.cache/recsys-engine/native``), named by a
hash of the source, the shared headers, the compiler's version, the flags and the platform, so an
upgrade or another machine never loads a stale one. A library is written under a temporary name
and renamed, so workers starting together may each compile but never load a half-written file.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Mode = Literal["auto", "on", "off"]
MODES: tuple[str, ...] = ("auto", "on", "off")
SOURCES = Path(__file__).parent
# -ffp-contract=off: no fused multiply-add, so float sums round exactly as numpy's do (and
# without -ffast-math, -O3 never reorders a float sum)
FLAGS = ("-O3", "-shared", "-fPIC", "-ffp-contract=off", "-fno-fast-math", "-fno-strict-aliasing")


class NativeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_NATIVE", extra="ignore")

    mode: Mode = Field(
        default="auto",
        validation_alias="RECSYS_NATIVE",
        description="auto | on | off (see recsys.native); RECSYS_NATIVE.",
    )
    cache: Path | None = Field(
        default=None,
        validation_alias="RECSYS_NATIVE_CACHE",
        description="Where built kernels are cached; RECSYS_NATIVE_CACHE.",
    )


class NativeBuildError(RuntimeError):
    """A kernel could not be compiled or loaded (``RECSYS_NATIVE=on``)."""


@lru_cache(maxsize=1)
def get_settings() -> NativeSettings:
    """The process's native-kernel settings, read from the environment on first use."""
    return NativeSettings()


def check_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ValueError(f"unknown RECSYS_NATIVE mode {mode!r}; valid modes are {MODES}")
    return mode  # type: ignore[return-value]


def cache_dir() -> Path:
    configured = get_settings().cache
    if configured is not None:
        return configured
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "recsys-engine" / "native"


def find_compiler() -> str | None:
    """The C compiler to use: ``$CC`` when set, else the first of cc, gcc, clang on PATH."""
    candidates = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


def _compiler_version(compiler: str) -> str:
    done = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.stdout.splitlines()[0] if done.stdout else compiler


def build(name: str, cache: Path | None = None) -> Path:
    """Compile ``recsys/native/<name>.c`` into the cache (once) and return the library's path.

    Raises NativeBuildError when there is no compiler or the compile fails.
    """
    source = SOURCES / f"{name}.c"
    if not source.is_file():
        raise NativeBuildError(f"no native kernel {name!r}; the kernels are {list(kernels())}")
    compiler = find_compiler()
    if compiler is None:
        raise NativeBuildError("no C compiler found (set CC, or install cc, gcc or clang)")
    headers = [h.read_text() for h in sorted(SOURCES.glob("*.h"))]  # what sources include
    key = hashlib.sha256(
        "\0".join(
            [source.read_text(), *headers, _compiler_version(compiler), " ".join(FLAGS),
             platform.machine(), platform.system()]
        ).encode()
    ).hexdigest()[:16]  # fmt: skip
    folder = cache or cache_dir()
    target = folder / f"{name}-{key}.so"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{name}-", suffix=".so", dir=folder)
    os.close(handle)
    try:
        done = subprocess.run(
            [compiler, *FLAGS, "-o", partial, str(source), "-lm"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise NativeBuildError(
                f"compiling {source.name} with {compiler} failed:\n{done.stderr.strip()}"
            )
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def address(array: np.ndarray) -> int:
    """The address of a C-contiguous array's first element, to pass to a kernel.

    Through the buffer protocol where the array is writable (about 0.5 us, against 2.5 for
    ``array.ctypes.data``); read-only and empty arrays take the slower way."""
    if not array.flags.c_contiguous:
        raise ValueError(f"a kernel needs C-contiguous arrays, got strides {array.strides}")
    if array.flags.writeable and array.nbytes:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))  # type: ignore[arg-type]
    return int(array.ctypes.data)


@cache
def library(name: str) -> ctypes.CDLL | None:
    """The loaded kernel library ``name``, or None where ``RECSYS_NATIVE`` is off or (auto)
    it cannot be built; built and loaded once per process."""
    mode = check_mode(get_settings().mode)
    if mode == "off":
        return None
    try:
        return ctypes.CDLL(str(build(name)))
    except (NativeBuildError, OSError, subprocess.SubprocessError) as exc:
        if mode == "on":
            raise NativeBuildError(f"native kernel {name!r}: {exc}") from exc
        warnings.warn(
            f"native kernel {name!r} unavailable, using the numpy path: {exc}", stacklevel=2
        )
        return None


def function(name: str, symbol: str, argtypes: list[Any], restype: Any) -> Any:
    """The C function ``symbol`` of kernel library ``name``, typed; None where the library is
    unavailable (see :func:`library`)."""
    lib = library(name)
    if lib is None:
        return None
    fn = getattr(lib, symbol)
    fn.argtypes, fn.restype = argtypes, restype
    return fn


def kernels() -> tuple[str, ...]:
    """The names of the kernels in this package (one C file each)."""
    return tuple(sorted(p.stem for p in SOURCES.glob("*.c")))


def prepare() -> dict[str, bool]:
    """Build and load every kernel now (pipelines call this when built, so that no request
    pays for a compile); which of them are native."""
    return {name: library(name) is not None for name in kernels()}
