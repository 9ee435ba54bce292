"""Chat memory is bounded: a session untouched past the TTL reads as new and is deleted, and
beyond the cap the least recently touched sessions go first (agents.memory.SQLiteMemory)."""

from __future__ import annotations

from pathlib import Path

from agents.memory import SQLiteMemory


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_past_its_ttl_is_forgotten(tmp_path: Path) -> None:
    clock = Clock()
    memory = SQLiteMemory(tmp_path / "chat.sqlite", ttl_s=60, clock=clock, prune_every=1)
    memory.add_turn("old", "user", "hello")
    memory.set_state("old", {"shown": ["i1"]})
    memory.add_trace("old", {"step": 1})
    clock.now += 59
    assert memory.turns("old") and memory.state("old") and memory.trace("old")
    clock.now += 2
    assert memory.turns("old") == [] and memory.state("old") == {} and memory.trace("old") == []
    memory.add_turn("other", "user", "hi")  # a write prunes: the rows are gone, not hidden
    assert memory.sessions() == 1
    memory.add_turn("old", "user", "again")  # the same id later starts afresh
    assert memory.turns("old") == [{"role": "user", "content": "again"}]


def test_sessions_beyond_the_cap_are_forgotten_oldest_first(tmp_path: Path) -> None:
    clock = Clock()
    memory = SQLiteMemory(tmp_path / "chat.sqlite", max_sessions=5, clock=clock, prune_every=1)
    for i in range(50):
        clock.now += 1
        memory.add_turn(f"s{i}", "user", "x" * 100)
    assert memory.sessions() == 5
    assert memory.turns("s49") and memory.turns("s0") == []
    rows = memory.db.execute("SELECT COUNT(DISTINCT session_id) FROM turns").fetchone()[0]
    assert rows == 5


def test_redis_memory_is_bounded_the_same_way(redis_port: int) -> None:
    from agents.memory import RedisMemory

    clock = Clock()
    memory = RedisMemory(f"redis://127.0.0.1:{redis_port}/0", ttl_s=600, max_sessions=5,
                         prune_every=1, max_trace=3, clock=clock)  # fmt: skip
    for i in range(20):
        clock.now += 1
        memory.add_turn(f"s{i}", "user", "x" * 100)
    assert memory.sessions() == 5
    assert memory.turns("s19") and memory.turns("s0") == []  # the oldest went, keys and all
    assert not memory.r.exists("chat:s0:turns")
    for n in range(10):
        memory.add_trace("s19", {"step": n})
    assert [r["step"] for r in memory.trace("s19")] == [7, 8, 9]  # the last records only
    clock.now += 601  # every session untouched past the TTL
    memory.set_state("new", {"shown": []})
    assert memory.sessions() == 1
    assert memory.r.ttl("chat:new:state") > 0  # Redis expires it on its own as well
