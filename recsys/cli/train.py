"""`recsys train`: fit every candidate source and write a versioned artifact bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from recsys.cli.common import app, print_json, user_errors


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
            help="Override a source's config field, SOURCE.FIELD=VALUE, checked against the "
            "field's type (lists as JSON); repeatable, e.g. --set sasrec.max_len=20.",
        ),
    ] = None,
    ranker: Annotated[
        list[str] | None,
        typer.Option(
            help="Ranker over the merged candidates (lightgbm, dlrm); repeatable. Default: every "
            "one this machine can train (dlrm needs TorchRec: python -m recsys.bootstrap)."
        ),
    ] = None,
    no_ranking: Annotated[
        bool, typer.Option("--no-ranking", help="Retrieval only: no features, no rankers.")
    ] = False,
    rank_only: Annotated[
        bool,
        typer.Option("--rank-only", help="Keep the bundle's sources; (re)train its rankers."),
    ] = False,
    folds: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Earlier time folds of ranker training groups: each refits the sources on the "
            "sequences without their last k items and labels the item before (default: "
            "RankerTrainConfig's).",
        ),
    ] = None,
    ranker_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Most ranker training rows, shared by the folds (users are added in a seeded "
            "random order, a batch at a time, until this many rows are kept). The rankers' "
            "training memory and time follow their rows; default: every list of up to "
            "RankerTrainConfig.max_users validation users.",
        ),
    ] = None,
    refit: Annotated[
        bool,
        typer.Option(
            help="Refit the served sources and features with the validation items once the "
            "rankers and the order are chosen (--no-refit: serve the training-split fit, "
            "which `recsys evaluate --split valid` can judge).",
        ),
    ] = True,
    tune_fill: Annotated[
        bool,
        typer.Option(
            help="Choose the merge's fill (RRF or per-source log-rank weights) and the quotas' "
            "share of the list by candidate recall on the rankers' validation users "
            "(--no-tune-fill: keep the hand-set quotas and the RRF fill).",
        ),
    ] = True,
    dlrm_workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Train the DLRM on TorchRec's DistributedModelParallel with this many torchrun "
            "workers (gloo on CPU, NCCL on GPU), tables sharded by the planner.",
        ),
    ] = 1,
) -> None:
    """Train the candidate sources (early stopping on validation), index them, write a bundle."""
    with user_errors():
        from models.ranker_registry import available_rankers
        from recsys.artifacts import TrainConfig, attach_ranking, load_bundle, train_bundle
        from recsys.data.contract import load_dataset
        from recsys.overrides import parse_overrides
        from recsys.ranking.train import RankerTrainConfig
        from recsys.retrieval.retriever import RetrievalConfig

        ranking = (
            None
            if no_ranking
            else RankerTrainConfig(
                rankers=tuple(ranker) if ranker else available_rankers(),
                seed=seed,
                options={"dlrm": {"workers": dlrm_workers}} if dlrm_workers > 1 else {},
                folds=RankerTrainConfig().folds if folds is None else folds,
                tune_fill=tune_fill,
                max_rows=ranker_rows,
            )
        )
        if rank_only:
            if ranking is None:
                raise ValueError("--rank-only trains rankers; it cannot go with --no-ranking")
            path = attach_ranking(load_dataset(data), out, ranking, progress=True, refit=refit)
            print_json(_summary(load_bundle(path).manifest, path))
            return
        overrides = parse_overrides(set_ or [])  # typed and checked before the data loads
        defaults = TrainConfig()
        config = TrainConfig(
            sources=tuple(source) if source else defaults.sources,
            seed=seed,
            retrieval=RetrievalConfig(total=candidates, depth=max(candidates, 500)),
            overrides=overrides,
            ranking=ranking,
            refit_with_valid=refit,
        )
        path = train_bundle(load_dataset(data), out, config, progress=True)
        print_json(_summary(load_bundle(path).manifest, path))


def _summary(manifest: dict[str, Any], path: Path) -> dict[str, Any]:
    summary = {
        "bundle": str(path),
        "version": manifest["version"],
        "train_seconds": manifest["train_seconds"],
        "valid_ndcg@10": {
            name: round(s["valid"]["ndcg@10"], 5) for name, s in manifest["sources"].items()
        },
    }
    if manifest.get("ranking"):
        summary["rankers"] = {
            name: {k: r[k] for k in ("selection_ndcg@10", "onnx_max_abs_diff", "fit_seconds")}
            for name, r in manifest["ranking"]["rankers"].items()
        }
        summary["default_ranker"] = manifest["ranking"]["default"]
        order = manifest["ranking"].get("order")
        if order:  # what serves: merged, a ranker or a blend, chosen on held-out validation users
            summary["served_order"] = order["chosen"]
            summary["order_validation_ndcg@10"] = order["validation_ndcg@10"]
        tuning = manifest["ranking"].get("fill_tuning")
        if tuning:  # the merge chosen on validation users (recsys.retrieval.tune)
            summary["merge_fill"] = tuning["chosen"]
    return summary
