"""benchmarks/agent_tasks.py on a tiny shop, LLM off: it runs, covers every intent and checks
every turn. Speeds are the benchmark's to report, never asserted here."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.agent_dialogues import INTENTS, ShopTruth, make_dialogues, noun_forms
from benchmarks.agent_tasks import main, shop


def test_dialogues_are_seeded_and_grounded_in_the_catalog(tmp_path: Path) -> None:
    bundle = shop(300, 200, 0, tmp_path / "cache")
    truth = ShopTruth(bundle)
    first = make_dialogues(truth, 4, seed=0)
    assert [d.to_dict() for d in first] == [d.to_dict() for d in make_dialogues(truth, 4, 0)]
    for d in first:
        assert sorted({t.intent for t in d.turns}) == sorted(INTENTS)
        within = truth.under(d.category) & truth.eligible(d.user_id) & (truth.price <= d.budget)
        assert within.sum() >= 3
        assert (within & truth.has(d.key, d.value)).sum() >= 2
        order = [t.intent for t in d.turns]
        assert order.index("find") < order.index("refine") < order.index("cheaper")
    assert noun_forms("Footwear > Boots > Hiking Boots") == (
        "hiking boots",
        "a pair of hiking boots",
    )
    assert noun_forms("Fashion > Knitwear & Accessories > Scarves")[1] == "a scarf"
    assert noun_forms("Grocery > Coffee & Tea > Green Tea") == ("green tea", "green tea")


def test_the_benchmark_runs_with_the_llm_off(tmp_path: Path) -> None:
    argv = ["--llm", "off", "--users", "300", "--items", "200", "--dialogues", "4",
            "--seed", "0", "--out", str(tmp_path), "--cache", str(tmp_path / "cache"),
            "--transcript", str(tmp_path / "turns.jsonl")]  # fmt: skip
    result = main(argv, progress=False)
    written = json.loads((tmp_path / "agent_tasks.json").read_text())
    assert written["modes"].keys() == {"off"} == result["modes"].keys()
    assert (tmp_path / "agent_tasks.png").stat().st_size > 0
    off = written["modes"]["off"]
    assert set(off["success_by_intent"]) == set(INTENTS)
    for intent, part in off["success_by_intent"].items():
        assert part["turns"] + part["skipped"] >= 4, intent  # every dialogue asks each once
        assert part["success"] is None or 0.0 <= part["success"] <= 1.0
    assert 0.0 <= off["success"] <= 1.0
    assert off["degraded_share"] == 1.0  # no model: every turn is flagged llm_unavailable
    assert off["turn_seconds"]["p50"] is not None and off["turn_seconds"]["p95"] is not None
    turns = [json.loads(line) for line in (tmp_path / "turns.jsonl").read_text().splitlines()]
    played = [t for t in turns if "skipped" not in t]
    assert len(played) == off["turns"]
    for turn in played:  # the per-turn checks ran on every turn
        for check in ("turn_ended", "items_from_tools", "text_ids_from_tools"):
            assert check in turn["checks"], (check, turn)
        assert turn["ok"] == (not turn["failures"])
    assert off["checks_run"]["turn_ended"] == off["turns"]
    for name in ("compare_tool", "recommend_tool", "names_attribute_keys", "within_budget"):
        assert off["checks_run"].get(name, 0) > 0, name
    failing = {(t["dialogue"], t["turn"]) for t in written["failing_turns"]}
    assert failing == {(t["dialogue"], t["turn"]) for t in played if not t["ok"]}
