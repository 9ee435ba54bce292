"""benchmarks/loadgen.py against a real uvicorn: the load's connections reach every worker, with
one worker (uvicorn then serves from its own process) as with two."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from benchmarks.loadgen import Server, encode_get, fetch

FLOOR = "benchmarks.server_floor:bare_app"  # no bundle to load: starts in about a second


@pytest.mark.parametrize("workers", [1, 2])
def test_balanced_connections_are_held_by_the_workers(tmp_path: Path, workers: int) -> None:
    server = Server(tmp_path / "no-bundle", workers, tmp_path, factory=FLOOR)
    try:

        async def scenario() -> tuple[dict[str, int], list[int]]:
            await server.wait_ready(timeout=60)
            conns = await server.open_balanced(4)
            try:
                assert len(conns) == 4
                probe = encode_get("127.0.0.1", server.port, "/metrics")
                status, _ = await fetch("127.0.0.1", server.port, probe)
                assert status == 200
                return server.connections_per_worker(conns), server.worker_pids()
            finally:
                for conn in conns:
                    conn.close()

        held, pids = asyncio.run(scenario())
    finally:
        server.stop()
    assert len(pids) == workers and sorted(held) == sorted(map(str, pids))
    assert sum(held.values()) == 4 and "unknown" not in held
    assert all(n == 4 // workers for n in held.values())  # spread evenly
