"""`recsys simulate` then `recsys ope`: the files a replay writes are what the CLI reads, and a
candidate bundle is valued from the log."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from recsys.artifacts import Bundle
from recsys.cli import app

runner = CliRunner()


def test_simulate_then_ope(bundle: Bundle, tmp_path: Path) -> None:
    out = tmp_path / "sim"
    # the same shop the bundle fixture was trained on (600 users, 200 items, seed 3)
    made = runner.invoke(app, ["simulate", "--out", str(out), "--requests", "400", "--seed", "3"])
    assert made.exit_code == 0, made.output
    truth = json.loads((out / "truth.json").read_text())
    assert truth["click"]["better"] > truth["click"]["worse"]
    args = [
        "ope",
        "--decisions",
        str(out / "decisions.jsonl"),
        "--events",
        str(out / "events.jsonl"),
        "--candidate",
        str(out / "targets" / "better.parquet"),
        "--candidate-bundle",
        str(bundle.path),
        "--json",
    ]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert doc["requests"] == 400 and [a["arm"] for a in doc["arms"]] == ["default"]
    better = doc["candidates"][str(out / "targets" / "better.parquet")]
    assert set(better) == {"ips", "snips", "dr"}
    assert all(e["low"] <= e["value"] <= e["high"] for e in better.values())
    from_bundle = doc["candidates"][str(bundle.path)]
    # a trained bundle's lists overlap the logging policy's only in part
    assert 0 < from_bundle["ips"]["matched"] < 1
    table = runner.invoke(app, args[:-1])
    assert table.exit_code == 0 and "snips" in table.output


def test_ope_names_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text("")
    (tmp_path / "e.jsonl").write_text('{"user_id": "u", "item_id": "i", "event": "click"}\n')
    args = ["ope", "--decisions", str(tmp_path / "d.jsonl"), "--events", str(tmp_path / "e.jsonl")]
    empty = runner.invoke(app, args)
    assert empty.exit_code == 2 and "holds no shown items" in empty.output
    bad = runner.invoke(app, [*args, "--interval", "jackknife"])
    assert bad.exit_code == 2 and "valid: ['normal', 'bootstrap']" in bad.output


def test_shadow_lists_are_not_outcomes_but_candidates(tmp_path: Path) -> None:
    def record(arm: str, items: list[str], shadow: bool, explored: bool = False) -> dict:
        shown = [
            {"item_id": i, "position": n, "propensity": 0.5, "explored": explored}
            for n, i in enumerate(items)
        ]
        return {
            "request_id": "r1",
            "user_id": "u",
            "arm": arm,
            "model_version": "v1",
            "shadow": shadow,
            "shown": shown,
        }

    records = [record("control", ["a", "b"], False), record("ghost", ["b", "a"], True)]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    event = {
        "event_id": "e",
        "user_id": "u",
        "item_id": "b",
        "event": "click",
        "request_id": "r1",
        "position": 1,
    }
    (tmp_path / "e.jsonl").write_text(json.dumps(event) + "\n")
    done = runner.invoke(
        app,
        [
            "ope",
            "--decisions",
            str(tmp_path / "d.jsonl"),
            "--events",
            str(tmp_path / "e.jsonl"),
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert [a["arm"] for a in doc["arms"]] == ["control"]  # the shadow's rows are not outcomes
    assert doc["arms"][0]["logged"]["value"] == 1.0
    ghost = doc["candidates"]["shadow arm ghost"]
    # the shadow would have shown b first, where nothing was logged: no match, no clicks
    assert ghost["ips"]["matched"] == 0.0 and ghost["ips"]["value"] == 0.0
