"""`recsys train --set SOURCE.FIELD=VALUE`: values take the field's type; bad ones are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from models.als import ALSConfig
from recsys.cli import app
from recsys.overrides import OverrideError, configured, parse_overrides


def test_values_take_their_field_type() -> None:
    overrides = dict(
        parse_overrides(
            [
                "als.factors=64",
                "als.regularization=1",
                "als.event_weights=[1, 2, 3, 4, 5]",
                "sasrec.pre_ln=false",
                "popular.window=null",
                "text.package=123",
            ]
        )
    )
    als = dict(overrides["als"])
    assert als["factors"] == 64 and type(als["factors"]) is int
    assert als["regularization"] == 1.0 and type(als["regularization"]) is float
    assert als["event_weights"] == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert dict(overrides["sasrec"]) == {"pre_ln": False}
    assert dict(overrides["popular"]) == {"window": None}
    assert dict(overrides["text"]) == {"package": "123"}  # a str field keeps the bare word


def test_quoted_bool_and_sorted_output() -> None:
    assert parse_overrides(["sasrec.pre_ln=true", "als.seed=3", "als.factors=8"]) == (
        ("als", (("factors", 8), ("seed", 3))),
        ("sasrec", (("pre_ln", True),)),
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("als.factors=abc", "--set als.factors='abc': expected int"),
        ("als.factors=1.5", "--set als.factors='1.5': expected int"),
        ("sasrec.pre_ln=maybe", "--set sasrec.pre_ln='maybe': expected bool"),
        ("als.event_weights=heavy", "--set als.event_weights='heavy': expected tuple[float, ...]"),
        ("popular.window=soon", "--set popular.window='soon': expected int | None"),
    ],
)
def test_bad_value_names_field_value_and_type(spec: str, message: str) -> None:
    with pytest.raises(OverrideError) as err:
        parse_overrides([spec])
    assert str(err.value) == message


def test_unknown_source_or_field_lists_the_valid_ones() -> None:
    with pytest.raises(OverrideError, match=r"unknown source 'alss'; valid sources are \[.*'als'"):
        parse_overrides(["alss.factors=2"])
    with pytest.raises(OverrideError, match=r"no config field\(s\) \['factrs'\]") as err:
        parse_overrides(["als.factrs=2"])
    assert "'factors'" in str(err.value) and "'regularization'" in str(err.value)
    with pytest.raises(OverrideError, match=r"SOURCE\.FIELD=VALUE"):
        parse_overrides(["factors=2"])


def test_the_configs_own_checks_run_at_parse_time() -> None:
    with pytest.raises(OverrideError, match="--set als: event_weights needs one weight per event"):
        parse_overrides(["als.event_weights=[1, 2]"])


def test_configured_applies_typed_values() -> None:
    config = configured("als", ALSConfig(), {"factors": "32", "train_half_life": None})
    assert config.factors == 32 and config.train_half_life is None


def test_cli_bad_override_is_one_line_and_exit_2(aisles_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "b"
    result = CliRunner().invoke(
        app, ["train", "--data", str(aisles_dir), "--out", str(out), "--set", "als.factors=abc"]
    )
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == ["error: --set als.factors='abc': expected int"]
    assert not out.exists()  # refused before anything trained or was written
