"""The LLM pool: bounded, apart from the shared pool, and deadlines count from submission."""

from __future__ import annotations

import asyncio
import threading

import anyio
import pytest

from agents.llm import LLMTimeout
from serving.llm_pool import LLMPool


def test_a_call_whose_deadline_passed_in_the_queue_never_runs() -> None:
    pool = LLMPool(workers=1)
    release, ran = threading.Event(), []

    async def main() -> None:
        busy = asyncio.ensure_future(pool.run(lambda: release.wait(60)))
        await asyncio.sleep(0.05)  # the only worker is taken
        with pytest.raises(LLMTimeout, match=r"0\.1 s"):
            await pool.run(lambda: ran.append(1), timeout_s=0.1)
        release.set()
        assert await busy is True

    asyncio.run(main())
    pool.close()
    assert ran == []  # answered as a timeout, and the model was never asked


def test_a_full_pool_leaves_the_shared_threads_free() -> None:
    pool = LLMPool(workers=2)
    release = threading.Event()

    async def main() -> None:
        stuck = [asyncio.ensure_future(pool.run(lambda: release.wait(60))) for _ in range(6)]
        await asyncio.sleep(0.05)
        # what health, metrics and events use: still answers while every LLM worker is busy
        assert await anyio.to_thread.run_sync(lambda: "ok") == "ok"
        release.set()
        assert all(await asyncio.gather(*stuck))

    asyncio.run(main())
    pool.close()


def test_iterate_runs_a_blocking_stream_to_its_end() -> None:
    pool = LLMPool(workers=1)

    async def main() -> list[int]:
        return [x async for x in pool.iterate(iter(range(5)))]

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    pool.close()
