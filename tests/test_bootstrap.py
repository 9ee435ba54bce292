"""The bootstrap's llama.cpp build leaves out the AMX kernels exactly where the CPU has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys import bootstrap
from recsys.bootstrap import NO_AMX, has_amx, llama_build_env


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {flags}\n")
    return path


def test_amx_is_read_from_the_cpu_flags_on_linux_x86(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bootstrap.platform, "system", lambda: "Linux")
    monkeypatch.setattr(bootstrap.platform, "machine", lambda: "x86_64")
    assert has_amx(_cpuinfo(tmp_path, "avx512f amx_tile amx_int8 amx_bf16"))
    assert not has_amx(_cpuinfo(tmp_path, "avx512f avx512_vnni"))
    assert not has_amx(tmp_path / "missing")
    monkeypatch.setattr(bootstrap.platform, "machine", lambda: "aarch64")
    assert not has_amx(_cpuinfo(tmp_path, "amx_int8"))  # -mno-amx-* is an x86 flag


def test_the_build_flags_are_added_only_with_amx_and_keep_the_users_own() -> None:
    env = {"PATH": "/bin", "CMAKE_ARGS": "-DGGML_BLAS=ON"}
    assert llama_build_env(env, amx=False) == env
    built = llama_build_env(env, amx=True)
    assert built["PATH"] == "/bin" and env["CMAKE_ARGS"] == "-DGGML_BLAS=ON"  # not mutated
    assert built["CMAKE_ARGS"] == (
        f"-DCMAKE_C_FLAGS='{NO_AMX}' -DCMAKE_CXX_FLAGS='{NO_AMX}' -DGGML_BLAS=ON"
    )
    assert llama_build_env({}, amx=True)["CMAKE_ARGS"].endswith(f"-DCMAKE_CXX_FLAGS='{NO_AMX}'")
    own = llama_build_env({"CFLAGS": "-O2 -g"}, amx=True)["CMAKE_ARGS"]  # CMAKE_C_FLAGS hides them
    assert own.startswith(f"-DCMAKE_C_FLAGS='{NO_AMX} -O2 -g' -DCMAKE_CXX_FLAGS='{NO_AMX}'")


def test_gcc_drops_amx_from_march_native_given_these_flags(tmp_path: Path) -> None:
    """The flags' premise: explicit -mno-* win over -march=native wherever they stand."""
    import shutil
    import subprocess

    gcc = shutil.which("gcc")
    if gcc is None or not has_amx():
        pytest.skip("needs gcc on a CPU with AMX")
    source = tmp_path / "empty.c"
    source.write_text("")
    cmd = [gcc, *NO_AMX.split(), "-march=native", "-dM", "-E", str(source)]
    macros = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    assert "__AMX_INT8__" not in macros
    native = subprocess.run([gcc, "-march=native", "-dM", "-E", str(source)], check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    assert "__AMX_INT8__" in native
