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
