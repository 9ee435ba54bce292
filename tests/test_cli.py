"""The command line: help everywhere, JSON output, and one clear line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["data"],
        ["evaluate"],
        ["demo"],
        ["data", "synth"],
        ["data", "import"],
        ["data", "stats"],
    ],
)
def test_every_command_has_help(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_evaluate_prints_one_json_document(aisles_dir: Path) -> None:
    result = runner.invoke(
        app, ["evaluate", "--data", str(aisles_dir), "--model", "covisit", "--json"]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    for key in (
        "recall@10",
        "ndcg@10",
        "mrr@10",
        "recall@20",
        "ndcg@20",
        "mrr@20",
        "users",
        "seconds",
    ):
        assert key in doc
    assert doc["model"] == "covisit" and doc["users"] == 600
    assert 0.0 <= doc["ndcg@10"] <= 1.0


def test_evaluate_several_models(aisles_dir: Path) -> None:
    args = ["evaluate", "--data", str(aisles_dir), "--model", "popular", "--model", "covisit"]
    result = runner.invoke(app, [*args, "--json", "--split", "valid"])
    assert result.exit_code == 0, result.output
    docs = json.loads(result.stdout)["results"]
    assert [d["model"] for d in docs] == ["popular", "covisit"]
    assert all(d["split"] == "valid" for d in docs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--data", "{data}", "--model", "als9"], "unknown model 'als9'"),
        (["evaluate", "--data", "{data}", "--split", "train"], "unknown split 'train'"),
        (["evaluate", "--data", "{data}", "--ties", "lucky"], "unknown tie rule 'lucky'"),
        (["evaluate", "--data", "{missing}"], "not a dataset directory"),
        (["data", "stats", "{missing}"], "not a dataset directory"),
        (["data", "import", "parquet2", "{data}", "--out", "{out}"], "unknown format 'parquet2'"),
        (["data", "import", "s3rec", "{missing}", "--out", "{out}"], "no such file"),
    ],
)
def test_bad_input_gets_one_clear_error(
    args: list[str], message: str, aisles_dir: Path, tmp_path: Path
) -> None:
    paths = {"data": str(aisles_dir), "missing": str(tmp_path / "nope"), "out": str(tmp_path)}
    result = runner.invoke(app, [a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_import_and_stats_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "seqs.txt"
    src.write_text("1 10 11 12\n2 11 12\n3 10 12 13 14\n")
    out = tmp_path / "ds"
    result = runner.invoke(app, ["data", "import", "s3rec", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 users, 5 items, 9 interactions" in result.output
    stats = runner.invoke(app, ["data", "stats", str(out), "--json"])
    assert stats.exit_code == 0, stats.output
    doc = json.loads(stats.stdout)
    assert doc["counts"]["interactions"] == 9
