"""Optional dependencies of the models: whether one can be imported, and how to install it.

Standalone on purpose: the ranker registry asks here without importing a model, and a model
names the fix here without importing the registry (the two would otherwise import each other).
"""

from __future__ import annotations

import importlib.util
import sys

TORCHREC_MISSING = (
    "TorchRec is not installed, and the dlrm ranker needs it. Install it with "
    "`python -m recsys.bootstrap` (torch, the `torchrec` extra, then torchrec itself with "
    "--no-deps), or train only the other rankers (e.g. --ranker lightgbm)."
)


def importable(module: str) -> bool:
    """Whether ``import module`` can find it, without importing it (TorchRec takes seconds)."""
    if module in sys.modules:
        return sys.modules[module] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_torchrec() -> None:
    """Raise ImportError saying how to install TorchRec when it cannot be imported."""
    try:
        import torchrec  # noqa: F401
    except ImportError as e:
        raise ImportError(TORCHREC_MISSING) from e
