"""Install the engine and its dependencies on a fresh machine: `python -m recsys.bootstrap`.

Standard library only, because it runs before anything else is installed. It exists for the
install facts in ../shared/ENVIRONMENT.md that a plain `pip install .` cannot express:

- torch 2.13.0 is installed first and pinned, so nothing later pulls the registry's CUDA build;
- TorchRec needs the CPU build of FBGEMM (1.8.0; 1.9.0 fails to load with torch 2.13.0), but
  declares the CUDA `fbgemm-gpu`, which overwrites the same `fbgemm_gpu/` folder. So TorchRec's
  other needs come from the `torchrec` extra and TorchRec itself goes in with `--no-deps`;
- the result is checked by importing it, and a CUDA fbgemm that slipped in is replaced.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"
TORCHREC = "torchrec==1.9.2"
FBGEMM_CPU = "fbgemm-gpu-cpu==1.8.0"
KNOWN_EXTRAS = ("dev", "llm", "gpu", "vllm")


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args]
    print("+ " + " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)


def installed(dist: str) -> bool:
    probe = [sys.executable, "-m", "pip", "show", "--quiet", dist]
    return subprocess.run(probe, capture_output=True).returncode == 0


def check_torchrec() -> None:
    code = (
        "import torch, fbgemm_gpu, torchrec; "
        "from torchrec import EmbeddingBagCollection; "
        "print('torch', torch.__version__, 'torchrec', torchrec.__version__)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys.bootstrap", description=__doc__)
    parser.add_argument(
        "--extras",
        default="",
        help=f"comma-separated optional extras to add: {', '.join(KNOWN_EXTRAS)}",
    )
    parser.add_argument(
        "--no-editable", action="store_true", help="install a copy instead of an editable link"
    )
    args = parser.parse_args(argv)
    extras = [e for e in (x.strip() for x in args.extras.split(",")) if e]
    unknown = [e for e in extras if e not in KNOWN_EXTRAS]
    if unknown:
        parser.error(f"unknown extras {unknown}; valid extras are {list(KNOWN_EXTRAS)}")
    if sys.version_info[:2] != (3, 11):
        print(f"warning: built and tested on Python 3.11, this is {sys.version.split()[0]}")

    started = time.time()
    pip(TORCH)
    spec = f"{ROOT}[{','.join(['torchrec', *extras])}]"
    pip(spec) if args.no_editable else pip("-e", spec)
    pip("--no-deps", TORCHREC)
    if installed("fbgemm-gpu"):
        # Some other package asked for the CUDA build; it shares fbgemm_gpu/ with the CPU one.
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "fbgemm-gpu"], check=True)
        pip("--force-reinstall", "--no-deps", FBGEMM_CPU)
    check_torchrec()
    print(f"bootstrap done in {time.time() - started:.0f} s (extras: {extras or 'none'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
