"""The decision rules file: the shipped example validates, typos and out-of-range values are
refused in one line naming them, and its JSON schema comes from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recsys.cli import app
from recsys.decision import DecisionConfigError, load_decision_config
from recsys.decision.config import DecisionRules, decision_config, decision_rules_schema

EXAMPLE = Path(__file__).parents[2] / "serving" / "decision.example.yaml"


def test_the_example_file_validates() -> None:
    config = load_decision_config(EXAMPLE)
    assert config.diversity.method == "mmr" and config.exploration.epsilon == 0.05
    assert config.category_caps == (("Fashion", 4),)
    assert config.boosts[0].match.categories == ("Sports & Outdoors",)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"diversity": {"lamda": 0.5}},
            "diversity: unknown key(s) ['lamda']; valid keys are ['method', 'lambda', "
            "'max_per_leaf']",
        ),
        ({"exploration": {"epsilon": 1.5}}, "exploration.epsilon must be in [0, 1], got 1.5"),
        ({"exploration": {"pool": 0}}, "exploration.pool must be >= 1, got 0"),
        ({"category_caps": {"Fashion": 0}}, "category_caps.Fashion must be >= 1, got 0"),
        (
            {"boosts": [{"match": {"brands": ["A"]}, "weight": float("nan")}]},
            "boosts[0].weight=nan: Input should be a finite number",
        ),
        (
            {"diversity": {"method": "fancy"}},
            "diversity.method='fancy': Input should be 'none' or 'mmr'",
        ),
        ({"bury": [{}]}, "bury[0]={}: a rule's match needs item_ids, brands or categories"),
    ],
)
def test_bad_rules_are_one_line_naming_key_value_and_valid(
    doc: dict[str, object], message: str
) -> None:
    with pytest.raises(DecisionConfigError) as err:
        decision_config(doc)
    assert str(err.value) == message


def test_a_bad_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "rules.json"
    bad.write_text(json.dumps({"exploration": {"epsilon": -0.1}}))
    with pytest.raises(DecisionConfigError) as err:
        load_decision_config(bad)
    epsilon = "exploration.epsilon must be in [0, 1], got -0.1"
    assert str(err.value) == f"decision config {bad}: {epsilon}"


def test_schema_command_prints_the_rules_schema() -> None:
    result = CliRunner().invoke(app, ["schema", "decision-rules"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema == decision_rules_schema() == DecisionRules.model_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "hide_out_of_stock", "exclude_purchased", "category_caps", "boosts", "bury", "diversity",
        "exploration",
    }  # fmt: skip
    explore = schema["$defs"]["ExplorationRule"]["properties"]["epsilon"]
    assert (explore["minimum"], explore["maximum"]) == (0, 1)
