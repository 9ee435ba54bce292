"""ONNX Runtime entry: provider preference, feed checks, a tiny exported model round trip."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.onnx_runtime import CPU, DEFAULT_PROVIDERS, OnnxSession, pick_providers


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(5, 3)
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        return self.linear(dense * self.emb(sparse[:, 0]))  # (N, 1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tiny, Path]:
    model = Tiny().eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(2, 3), torch.zeros(2, 1, dtype=torch.int64)),
            str(path),
            input_names=["dense", "sparse"],
            output_names=["score"],
            dynamic_axes={"dense": {0: "n"}, "sparse": {0: "n"}, "score": {0: "n"}},
            dynamo=False,
        )
    return model, path


def test_cpu_is_always_picked_last() -> None:
    assert CPU in ort.get_available_providers()
    picked = pick_providers()
    assert picked[-1] == CPU
    assert picked == [p for p in DEFAULT_PROVIDERS if p in ort.get_available_providers()]
    assert pick_providers(["CUDAExecutionProvider"])[-1] == CPU
    assert pick_providers([]) == [CPU]


def test_preference_order_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = ["CUDAExecutionProvider", "TensorrtExecutionProvider", CPU]
    monkeypatch.setattr(ort, "get_available_providers", lambda: gpu)
    assert pick_providers() == ["TensorrtExecutionProvider", "CUDAExecutionProvider", CPU]
    assert pick_providers([CPU, "CUDAExecutionProvider"]) == [CPU, "CUDAExecutionProvider"]
    assert pick_providers(["CUDAExecutionProvider"]) == ["CUDAExecutionProvider", CPU]


def test_unknown_provider_is_named() -> None:
    with pytest.raises(ValueError, match=r"CudaProvider.*valid names: .*CPUExecutionProvider"):
        pick_providers(["CudaProvider", CPU])


def test_round_trip_matches_torch(tiny) -> None:
    model, path = tiny
    session = OnnxSession(path)
    assert session.providers == [CPU]
    assert session.input_names == ("dense", "sparse")
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(7, 3)).astype(np.float32)
    sparse = rng.integers(0, 5, size=(7, 1))
    scores = session.run({"dense": dense, "sparse": sparse})
    assert scores.shape == (7,) and scores.dtype == np.float32
    with torch.no_grad():
        expected = model(torch.from_numpy(dense), torch.from_numpy(sparse)).numpy().ravel()
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    # float64 and int32 feeds are converted to the model's dtypes.
    np.testing.assert_allclose(
        session.run({"dense": dense.astype(np.float64), "sparse": sparse.astype(np.int32)}),
        scores,
    )


def test_feeds_are_checked_by_name(tiny) -> None:
    _, path = tiny
    session = OnnxSession(path, providers=[CPU], threads=1)
    dense = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"missing \['sparse'\], unexpected \['spares'\]"):
        session.run({"dense": dense, "spares": np.zeros((2, 1), np.int64)})
    with pytest.raises(FileNotFoundError):
        OnnxSession(path.with_name("absent.onnx"))
