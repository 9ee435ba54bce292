"""The `recsys` command line. Heavy imports happen inside commands so `--help` stays instant.

Each command module registers on :data:`recsys.cli.common.app`; importing them here assembles
the app (``common`` imports none of them, so the modules form no cycle).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from recsys.cli import demo, evaluate, experiments, serve, train
from recsys.cli.common import app
from recsys.cli.data import data_app
from recsys.cli.schema import schema_app

app.add_typer(data_app, name="data")
app.add_typer(schema_app, name="schema")
_COMMANDS = (demo, evaluate, experiments, serve, train)  # registered on import


def _plugins() -> None:
    """Commands of the layers above the core (``recsys tune-llm`` from agents), declared as
    ``recsys.commands`` entry points: the core never imports them."""
    for entry in entry_points(group="recsys.commands"):
        entry.load()(app)


_plugins()


def main() -> None:
    app()


__all__ = ["app", "main"]
