"""Shared fixtures: a seeded dataset with a known answer, and the real-data location."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.contract import Dataset
from recsys.data.locations import datasets_dir

SHARED_DATA = datasets_dir()


@pytest.fixture(autouse=True, scope="session")
def _own_rewrite_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The shared rewrite store in a folder of this run's own: the default file under var/
    outlives a run, and a test expecting the model to answer would read an earlier run's."""
    from serving.search.rewriting import shared_store

    key = "RECSYS_REWRITE_CACHE_SQLITE_PATH"
    before = os.environ.get(key)
    os.environ[key] = str(tmp_path_factory.mktemp("rewrites") / "rewrites.sqlite")
    shared_store.cache_clear()
    yield
    if before is None:
        os.environ.pop(key, None)
    else:
        os.environ[key] = before
    shared_store.cache_clear()


N_AISLES, AISLE = 20, 10


def make_aisles(seed: int = 0, n_users: int = 600) -> Dataset:
    """Items form 20 aisles of 10; each shopper walks one aisle in order from a random start.

    The next item is fully determined by the last one while popularity is nearly flat, so any
    model that learns from sequences must beat popularity by a wide margin.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        aisle = rng.integers(N_AISLES)
        start = rng.integers(0, AISLE - 5)
        length = rng.integers(4, AISLE - start + 1)
        for step in range(length):
            item = aisle * AISLE + start + step
            rows.append((f"u{u}", f"i{item}", step, "view"))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "ts", "event"])
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(N_AISLES * AISLE)]})
    items["title"] = "item " + items["item_id"]
    return Dataset(inter, items, {"name": "aisles"}).validate()


@pytest.fixture(scope="session")
def aisles() -> Dataset:
    return make_aisles()


@pytest.fixture(scope="session")
def aisles_dir(aisles: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return aisles.save(tmp_path_factory.mktemp("aisles") / "ds")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture()
def redis_port(tmp_path: Path) -> Iterator[int]:
    """A real redis-server on a free loopback port, for the test (CI installs the binary)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server binary not found on PATH (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)


# a small disk of our own, for the storage-fault tests (mounting needs root: skipped otherwise)
def mount(args: list[str]) -> None:
    """``mount ARGS`` (root only)."""
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs of our own (the rest of the machine is never filled)."""
    where = tmp_path / "disk"
    where.mkdir()
    try:
        mount(["-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)])
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {exc}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=60)


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk says ENOSPC; returns it (delete it to free)."""
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 512, 1):  # big blocks, then the last bytes
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return ballast


@pytest.fixture(params=["c", "c-portable", "numpy"])
def topk_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs a test on the C top-k kernel (recsys/native/topk.c), fastest path and portable
    loops, and on the numpy path."""
    from recsys.native import topk as native_topk

    if request.param == "numpy":
        monkeypatch.setattr(native_topk, "_kernel", lambda: None)
    elif native_topk._kernel() is None:
        pytest.skip("the C top-k kernel is not built here (no C compiler)")
    portable = request.param == "c-portable"
    if portable:
        native_topk.portable_only(True)
    try:
        yield "c" if portable else str(request.param)
    finally:
        if portable:
            native_topk.portable_only(False)
