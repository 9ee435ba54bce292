"""`recsys rewrite-cache`: rewrite a bundle's frequent long-tail queries offline, with a
generous deadline, into the bundle's ``rewrites.sqlite``, so serving answers them in a lookup.

Added to the ``recsys`` command line through the ``recsys.commands`` entry point (the core's
CLI never imports the layers above it). The queries come from the dataset's ``queries.parquet``
and from query logs (one query per line, or JSON lines with a ``query`` field); the most
frequent first, head queries (retrieval answers them as typed) left out.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from agents.llm import LLMError
from agents.rewrite import QueryRewriter
from agents.rewrite_cache import BUNDLE_FILE, SQLiteStore, query_key, to_doc


def frequent(queries: Iterable[str]) -> list[tuple[str, int]]:
    """(query as first written, count) per normalized query, most frequent first."""
    counts: Counter[str] = Counter()
    first: dict[str, str] = {}
    for query in queries:
        key = query_key(query)
        if key:
            counts[key] += 1
            first.setdefault(key, query)
    return [(first[k], n) for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def read_log(path: Path) -> list[str]:
    """Queries of a log file: JSON lines with a "query" field, or one plain query per line."""
    out: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            doc = json.loads(line)
            if isinstance(doc, dict) and isinstance(doc.get("query"), str):
                out.append(doc["query"])
        elif line:
            out.append(line)
    return out


def precompute(
    rewriter: QueryRewriter, version: str, queries: Iterable[str], out: Path, top: int = 500
) -> dict[str, Any]:
    """Rewrite the ``top`` most frequent long-tail ``queries`` into ``out`` (a SQLite store);
    a query the model fails on is skipped and counted (serving asks the model for it then)."""
    store = SQLiteStore(out)
    stats = {"queries": 0, "longtail": 0, "stored": 0, "failed": 0, "seconds": 0.0}
    started = time.perf_counter()
    for query, _ in frequent(queries):
        stats["queries"] += 1
        if stats["longtail"] >= top or rewriter.kind(query)[0] == "head":
            continue
        stats["longtail"] += 1
        try:
            rewrite = rewriter.rewrite(query, "force")
        except LLMError:
            stats["failed"] += 1
            continue
        store.put(version, query_key(query), to_doc(rewrite))
        stats["stored"] += 1
    stats["seconds"] = round(time.perf_counter() - started, 2)
    return {**stats, "file": str(out), "entries": len(store)}


def rewrite_cache(
    bundle: Annotated[Path, typer.Option(help="Bundle directory; rewrites.sqlite goes in it.")],
    data: Annotated[
        Path | None, typer.Option(help="Dataset directory whose queries.parquet to read.")
    ] = None,
    log: Annotated[
        list[Path] | None,
        typer.Option(help="Query log: a query per line or JSON lines with 'query'; repeatable."),
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="Long-tail queries to rewrite.")] = 500,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per query for the model.")] = 30,
) -> None:
    """Precompute the rewrites of a bundle's frequent long-tail queries with the configured LLM
    (RECSYS_LLM_*, the rewrite route), stored with the bundle for serving to look up."""
    from dataclasses import replace

    from recsys.cli.common import print_json, user_errors

    with user_errors():
        from agents.layer import LLMLayer, encoder_similarity
        from agents.rewrite import RewriteConfig, lexical_confidence
        from agents.vocabulary import CatalogVocabulary
        from recsys.artifacts import load_bundle
        from recsys.data.contract import load_dataset
        from recsys.search.stage import query_stage

        if data is None and not log:
            raise ValueError("give --data (a dataset with queries.parquet) and/or --log FILE")
        queries: list[str] = []
        if data is not None:
            ds = load_dataset(data)
            if ds.queries is None:
                raise ValueError(f"{data} has no queries.parquet; give --log FILE instead")
            queries += [str(q) for q in ds.queries["text"]]
        for path in log or []:
            queries += read_log(path)
        served = load_bundle(bundle)
        stage = query_stage(served)
        similarity = encoder_similarity(stage.text.model) if stage.text is not None else None
        rewriter = QueryRewriter(
            LLMLayer().client("rewrite"),
            served.items,
            lambda w: w in stage.lexical.vocab,
            replace(RewriteConfig(), timeout_s=timeout),
            similarity=similarity,
            parser=CatalogVocabulary.build(served.items, similarity=similarity),
            confidence=lexical_confidence(stage.lexical) if stage.lexical.usable else None,
        )
        print_json(precompute(rewriter, served.version, queries, bundle / BUNDLE_FILE, top))


def register(app: typer.Typer) -> None:
    app.command("rewrite-cache")(rewrite_cache)
