"""The one ONNX Runtime entry for every ranker: provider choice and a per-request session.

Serving runs one small batch (about 500 candidate rows) per request, so the session is built
for low per-call overhead: one intra-op thread by default (requests, not rows, are the unit of
parallelism), full graph optimization, one ``RunOptions`` reused across calls, and feeds passed
to the runtime without a copy when they already have the model's dtype.

Providers are a preference list: the same configuration serves a GPU machine (TensorRT, then
CUDA) and a CPU one, where only ``CPUExecutionProvider`` is available and is picked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

CPU = "CPUExecutionProvider"
DEFAULT_PROVIDERS: tuple[str, ...] = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    CPU,
)

# ONNX tensor element types of the inputs a ranker takes, as numpy dtypes.
_DTYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(double)": np.dtype(np.float64),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(bool)": np.dtype(np.bool_),
}


def pick_providers(preferred: Sequence[str] = DEFAULT_PROVIDERS) -> list[str]:
    """The ``preferred`` providers this onnxruntime build has, in preference order.

    The CPU provider is always the last resort, appended when ``preferred`` leaves it out.
    A name onnxruntime does not know at all (a typo) raises ``ValueError``.
    """
    if isinstance(preferred, str):
        preferred = (preferred,)
    known = ort.get_all_providers()
    unknown = [name for name in preferred if name not in known]
    if unknown:
        raise ValueError(
            f"unknown execution provider(s) {unknown}; valid names: {', '.join(known)}"
        )
    available = set(ort.get_available_providers())
    picked = [name for name in dict.fromkeys(preferred) if name in available]
    if CPU not in picked:
        picked.append(CPU)
    return picked


class OnnxSession:
    """An ONNX model ready to score: ``run(feeds)`` -> the first output as (N,) float32."""

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        threads: int = 1,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX model at {self.path}")
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(self.path),
            sess_options=options,
            providers=pick_providers(DEFAULT_PROVIDERS if providers is None else providers),
        )
        self._run_options = ort.RunOptions()
        inputs = self._session.get_inputs()
        self.input_names: tuple[str, ...] = tuple(i.name for i in inputs)
        self._dtypes = {i.name: _DTYPES.get(i.type) for i in inputs}
        self._output = [self._session.get_outputs()[0].name]

    @property
    def providers(self) -> list[str]:
        """The providers the session actually uses, best first."""
        return list(self._session.get_providers())

    def run(self, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
        """Score one batch: ``feeds`` maps every input name to an array; returns (N,) float32."""
        if feeds.keys() != self._dtypes.keys():
            missing = sorted(set(self._dtypes) - set(feeds))
            extra = sorted(set(feeds) - set(self._dtypes))
            raise ValueError(
                f"ONNX feeds do not match the model inputs {list(self.input_names)}: "
                f"missing {missing}, unexpected {extra}"
            )
        # ascontiguousarray is a no-op (no copy) for an array that already fits.
        arrays = {
            name: np.ascontiguousarray(value, dtype=self._dtypes[name])
            for name, value in feeds.items()
        }
        out = self._session.run(self._output, arrays, self._run_options)[0]
        return np.asarray(out, dtype=np.float32).reshape(-1)  # (N,)

    def __repr__(self) -> str:
        return f"OnnxSession({str(self.path)!r}, providers={self.providers})"
