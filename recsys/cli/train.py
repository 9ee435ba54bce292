"""`recsys train`: fit every candidate source and write a versioned artifact bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsys.cli.app import app, print_json, user_errors


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Dataset directory (canonical form).")],
    out: Annotated[Path, typer.Option(help="Bundle directory to write.")],
    source: Annotated[
        list[str] | None,
        typer.Option(help="Candidate source; repeat for several. Default: all of them."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for every model; same seed, same bundle.")] = 0,
    candidates: Annotated[int, typer.Option(min=1, help="Merged candidates per request.")] = 500,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a source's config field, SOURCE.FIELD=VALUE (JSON value); repeatable, "
            "e.g. --set sasrec.max_len=20.",
        ),
    ] = None,
) -> None:
    """Train the candidate sources (early stopping on validation), index them, write a bundle."""
    with user_errors():
        from recsys.artifacts import TrainConfig, load_bundle, parse_overrides, train_bundle
        from recsys.data.contract import load_dataset
        from recsys.retrieval.retriever import RetrievalConfig

        defaults = TrainConfig()
        config = TrainConfig(
            sources=tuple(source) if source else defaults.sources,
            seed=seed,
            retrieval=RetrievalConfig(total=candidates, depth=max(candidates, 500)),
            overrides=parse_overrides(set_ or []),
        )
        path = train_bundle(load_dataset(data), out, config, progress=True)
        manifest = load_bundle(path).manifest
        summary = {
            "bundle": str(path),
            "version": manifest["version"],
            "train_seconds": manifest["train_seconds"],
            "valid_ndcg@10": {
                name: round(s["valid"]["ndcg@10"], 5) for name, s in manifest["sources"].items()
            },
        }
        print_json(summary)
