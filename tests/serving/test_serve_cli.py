"""`recsys serve` for real: a uvicorn process on loopback answers over HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from recsys.artifacts import Bundle


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_over_http(bundle: Bundle) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recsys",
            "serve",
            "--bundle",
            str(bundle.path),
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # start-up on a loaded machine; not a speed check
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            raise AssertionError("recsys serve never became ready")
        body = {"user_id": str(bundle.user_ids[0]), "k": 3}
        answer = httpx.post(f"{url}/v1/recommend", json=body, timeout=10).json()
        assert answer["model_version"] == bundle.version and len(answer["items"]) == 3
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "example requests:" in out and f"{url}/v1/recommend" in out
