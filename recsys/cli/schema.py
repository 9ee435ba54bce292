"""`recsys schema`: the JSON schemas of the configuration files, for editors and CI checks."""

from __future__ import annotations

import typer

from recsys.cli.common import print_json

schema_app = typer.Typer(
    help="Print the JSON schema of a configuration file.", no_args_is_help=True
)


@schema_app.command("decision-rules")
def decision_rules() -> None:
    """The decision rules file (RECSYS_DECISION_CONFIG, e.g. serving/decision.example.yaml)."""
    from recsys.decision.config import decision_rules_schema

    print_json(decision_rules_schema())
