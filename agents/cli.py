"""The agent layer's commands, added to the ``recsys`` command line through the
``recsys.commands`` entry point (the core's CLI never imports the layers above it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def tune_llm(
    bundle: Annotated[Path, typer.Option(help="Bundle directory to tune (written in place).")],
    data: Annotated[Path, typer.Option(help="The dataset the bundle was trained on.")],
    users: Annotated[int, typer.Option(min=10, help="Validation users to score.")] = 200,
    top_n: Annotated[int, typer.Option(min=2, max=26, help="Candidates the LLM scores.")] = 20,
    seed: Annotated[int, typer.Option(help="Which validation users.")] = 0,
) -> None:
    """Choose the LLM rerank's blend weight on validation users with the configured LLM
    (RECSYS_LLM_*, the rerank route) and store it in the bundle."""
    from recsys.cli.common import print_json, user_errors

    with user_errors():
        from agents.layer import LLMLayer
        from agents.tune import TuneConfig, tune_rerank
        from recsys.data.contract import load_dataset

        llm = LLMLayer().client("rerank")
        config = TuneConfig(users=users, top_n=top_n, seed=seed)
        print_json(tune_rerank(load_dataset(data), bundle, llm, config))


def register(app: typer.Typer) -> None:
    app.command("tune-llm")(tune_llm)
