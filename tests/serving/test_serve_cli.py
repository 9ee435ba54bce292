"""`recsys serve` for real: a uvicorn process on loopback answers over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from recsys.artifacts import Bundle


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = {
        **os.environ,
        "RECSYS_EVENTS_PATH": str(tmp_path / "events.sqlite"),
        "RECSYS_DECISION_LOG_PATH": str(tmp_path / "decisions.jsonl"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "recsys", "serve", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    return proc, f"http://127.0.0.1:{port}"


def _wait_ready(proc: subprocess.Popen[str], url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds  # start-up on a loaded machine; not a speed check
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError("recsys serve never became ready")


def test_serve_answers_over_http(bundle: Bundle, tmp_path: Path) -> None:
    proc, url = _serve(["--bundle", str(bundle.path)], tmp_path)
    try:
        _wait_ready(proc, url, 120)
        body = {"user_id": str(bundle.user_ids[0]), "k": 3}
        answer = httpx.post(f"{url}/v1/recommend", json=body, timeout=10).json()
        assert answer["model_version"] == bundle.version and len(answer["items"]) == 3
        found = httpx.post(f"{url}/v1/search", json={"query": "jacket"}, timeout=10)
        assert found.status_code == 200 and found.json()["model_version"] == bundle.version
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "example requests:" in out and f"{url}/v1/recommend" in out
    assert f"{url}/v1/search" in out


def test_serve_trains_the_synthetic_shop_when_no_bundle_exists(tmp_path: Path) -> None:
    target = tmp_path / "demo" / "bundle"
    args = ["--bundle", str(target), "--train-if-missing", "--users", "300", "--items", "60"]
    proc, url = _serve(args, tmp_path)
    try:
        _wait_ready(proc, url, 420)
        answer = httpx.post(f"{url}/v1/recommend", json={"user_id": "u000001"}, timeout=10)
        assert answer.status_code == 200 and answer.json()["ranker"] is not None
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "training one on the synthetic shop" in out and (target / "manifest.json").is_file()


def test_serve_refuses_a_mistyped_bundle_path_instead_of_training(tmp_path: Path) -> None:
    target = tmp_path / "bundel"  # a typo: nothing there
    proc, _ = _serve(["--bundle", str(target)], tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    assert f"no bundle at {target}" in out and "--train-if-missing" in out
    assert "training" not in out and not target.exists()


def test_serve_names_an_unwritable_events_path_before_serving(
    bundle: Bundle, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    port = _free_port()
    env = {**os.environ, "RECSYS_EVENTS_PATH": str(blocker / "events.sqlite")}
    cmd = [sys.executable, "-m", "recsys", "serve", "--port", str(port)]
    args = [*cmd, "--bundle", str(bundle.path)]
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(blocker / "events.sqlite") in lines[0], proc.stderr
    assert "not writable" in lines[0] and "serving" not in proc.stdout
