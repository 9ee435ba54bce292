"""`recsys serve`: serve a bundle over HTTP, training one on the synthetic shop if none exists."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from recsys.cli.common import app, user_errors

if TYPE_CHECKING:
    from recsys.artifacts import Bundle

EXAMPLES = """\
example requests:
  curl -s {url}/readyz
  curl -s {url}/v1/recommend -H 'content-type: application/json' \\
      -d '{{"user_id": "{user}", "k": 5, "explain": true, "trace": true}}'
  curl -s {url}/v1/search -H 'content-type: application/json' \\
      -d '{{"query": "{query}", "k": 5, "filters": {{"price_max": 100}}}}'
  curl -s {url}/v1/rank -H 'content-type: application/json' \\
      -d '{{"user_id": "{user}", "item_ids": ["{item}", "{item2}", "no-such-item"]}}'
  curl -s {url}/v1/events -H 'content-type: application/json' \\
      -d '{{"event_id": "e-1", "user_id": "{user}", "item_id": "{item}", "event": "purchase"}}'
  curl -s '{url}/v1/items/{item}/similar?k=5'
  curl -s {url}/metrics
  open {url}/docs for the OpenAPI page
  admin (with RECSYS_ADMIN_API_KEY set): curl -s -X POST {url}/admin/reload \\
      -H "X-API-Key: $RECSYS_ADMIN_API_KEY" -H 'content-type: application/json' -d '{{}}'"""


def _example_query(loaded: Bundle) -> str:
    category = loaded.items.category
    if category is None or not len(category):
        return "gift"
    return str(category[0]).split(" > ")[-1].lower()


DEMO_BUNDLE = Path("var/demo/bundle")


def writable_paths() -> list[Path]:
    """The files the server writes, from the variables its settings read: the event log
    (``RECSYS_EVENTS_PATH``, its default under var/serving/ with the other defaults), the
    decision log and a SQLite chat memory where set."""
    from recsys.events import DEFAULT_EVENTS_PATH

    paths = [Path(os.environ.get("RECSYS_EVENTS_PATH") or DEFAULT_EVENTS_PATH)]
    for name in ("RECSYS_DECISION_LOG_PATH", "RECSYS_CHAT_MEMORY"):
        value = os.environ.get(name, "")
        if value and "://" not in value:
            paths.append(Path(value))
    return paths


def check_writable(paths: list[Path]) -> None:
    """Fail before serving, in one line naming the path, rather than in every worker; the
    first path is the event log."""
    from recsys.events import EventLog, EventStoreError

    for i, path in enumerate(paths):
        try:
            if i == 0:  # the event log: opened as the server opens it
                EventLog(path).close()
            else:
                _touch(path)
        except (OSError, EventStoreError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ValueError(f"{path}: not writable ({reason})") from None


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab"):  # appends nothing: an existing file is left as it is
        pass


@app.command()
def serve(
    bundle: Annotated[
        Path | None, typer.Option(help=f"Bundle to serve [default: {DEMO_BUNDLE}].")
    ] = None,
    train_if_missing: Annotated[
        bool,
        typer.Option(
            help="Train a synthetic-shop bundle at --bundle when there is none (always on for "
            "the default demo path)."
        ),
    ] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="API worker processes.")] = 1,
    users: Annotated[int, typer.Option(min=10, help="Synthetic shop users, if training.")] = 20_000,
    items: Annotated[int, typer.Option(min=20, help="Synthetic shop items, if training.")] = 4_000,
    seed: Annotated[int, typer.Option(help="Seed, if training.")] = 0,
) -> None:
    """Serve the ranking API on a bundle; train one on the synthetic shop first if it is missing."""
    with user_errors():
        import uvicorn

        from recsys.artifacts import load_bundle, train_bundle
        from recsys.cli.demo import FAST_SOURCES, demo_config, synthetic_shop

        if bundle is None:  # the demo: trained on first run
            bundle, train_if_missing = DEMO_BUNDLE, True
        check_writable(writable_paths())
        if not (bundle / "manifest.json").is_file():
            if not train_if_missing:
                raise FileNotFoundError(
                    f"no bundle at {bundle} (no manifest.json): give the path of a bundle "
                    "written by `recsys train`, or add --train-if-missing to train one there"
                )
            typer.echo(f"no bundle at {bundle}: training one on the synthetic shop")
            ds = synthetic_shop(bundle.parent / "synthetic-shop", users, items, seed, typer.echo)
            train_bundle(ds, bundle, demo_config(FAST_SOURCES, seed), progress=True)
        loaded = load_bundle(bundle)  # fails here, by name, rather than in every worker
        url = f"http://{host}:{port}"
        typer.echo(f"serving {loaded.version} on {url}")
        typer.echo(
            EXAMPLES.format(
                url=url,
                user=loaded.user_ids[0],
                item=loaded.item_ids[0],
                item2=loaded.item_ids[1],
                query=_example_query(loaded),
            )
        )
        os.environ["RECSYS_BUNDLE_PATH"] = str(bundle.resolve())  # read by each worker
        # each worker's BLAS/OpenMP pools are sized at import from these: one thread each,
        # processes (--workers) are how the server uses more cores
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
        if workers > 1 and not os.environ.get("RECSYS_METRICS_DIR"):
            # one scrape sums every worker (serving.metrics_shared); a folder per port
            shared = Path("var/serving/metrics") / str(port)
            for stale in shared.glob("*.json"):
                stale.unlink()
            os.environ["RECSYS_METRICS_DIR"] = str(shared.resolve())
        uvicorn.run("serving.app:create_app", factory=True, host=host, port=port, workers=workers)
