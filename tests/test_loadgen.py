"""benchmarks/loadgen.py against a real uvicorn: the load's connections reach every worker, with
one worker (uvicorn then serves from its own process) as with two."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from benchmarks.loadgen import LoadClient, Run, Server, encode_get, fetch

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


def test_dispatch_draws_a_free_connection_at_random_and_queues_when_none_is() -> None:
    async def scenario() -> tuple[Counter[int], list[int], bool]:
        client = LoadClient("127.0.0.1", 1, timeout=1.0, seed=0)
        client.inbox = [asyncio.Queue() for _ in range(4)]
        job = (0.0, b"", Run(expected=1))
        picks: list[int] = []
        for _ in range(400):  # every connection free before each request, as at a low rate
            client.idle = [0, 1, 2, 3]
            client.submit(job)
            (pick,) = [i for i, q in enumerate(client.inbox) if q.qsize()]
            picks.append(pick)
            assert client.inbox[pick].get_nowait() is job and pick not in client.idle
        client.idle = []
        client.submit(job)  # every connection busy: the request waits in the backlog
        waited = list(client.backlog) == [job]
        first = await client._next(2)  # the first connection to free up takes it
        return Counter(picks), picks[:8], waited and first is job and client.idle == []

    counts, head, queued = asyncio.run(scenario())
    assert sorted(counts) == [0, 1, 2, 3] and min(counts.values()) > 60  # each about 100
    assert head != [0, 1, 2, 3, 0, 1, 2, 3]  # not a fixed cycle through the connections
    assert queued
