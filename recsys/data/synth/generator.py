"""Assemble the synthetic shop into a canonical :class:`~recsys.data.contract.Dataset`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..contract import EVENTS, Dataset
from .behaviour import Q_BRAND, Q_COLOUR, Q_NONE, EventLog, simulate
from .catalog import BRAND_NAMES, LEAF_INTERVAL, Catalog, build_catalog
from .config import GENERATOR_VERSION, SynthConfig
from .frames import object_frame
from .queries import build_queries
from .taxonomy import LEAVES
from .users import Users, build_users
from .vocab import COLOURS

PHASES = ("catalogue", "users", "sessions", "interactions", "queries", "validate")


def _session_queries(log: EventLog) -> np.ndarray:
    """The search text of every session that started with a search, else None."""
    out = np.full(len(log.session_query), None, dtype=object)
    for s in np.flatnonzero(log.session_query != Q_NONE):
        noun = LEAVES[log.session_leaf[s]].spec.noun
        kind = log.session_query[s]
        if kind == Q_COLOUR:
            out[s] = f"{COLOURS[log.session_colour[s]]} {noun}"
        elif kind == Q_BRAND:
            out[s] = f"{BRAND_NAMES[log.session_brand[s]].lower()} {noun}"
        else:
            out[s] = noun
    return out


def _interactions(log: EventLog, users: Users, catalog: Catalog) -> pd.DataFrame:
    order = np.lexsort((log.event, log.session, log.ts, log.user))
    user, item, ts = log.user[order], log.item[order], log.ts[order]
    event, session = log.event[order], log.session[order]

    # Durable goods are bought once: a second purchase of the same item by the same user is
    # dropped (its cart event stays, as an abandoned cart). Consumables may repeat.
    buy = np.flatnonzero(
        (event == EVENTS.index("purchase")) & (LEAF_INTERVAL[catalog.leaf[item]] == 0)
    )
    key = user[buy].astype(np.int64) * len(catalog.leaf) + item[buy]
    _, first = np.unique(key, return_index=True)
    keep = np.ones(len(user), dtype=bool)
    keep[buy] = False
    keep[buy[first]] = True
    user, item, ts, event, session = (a[keep] for a in (user, item, ts, event, session))

    # Session ids follow (user, start time), the order sessions first appear in.
    seen, first_row = np.unique(session, return_index=True)
    rank = np.empty(len(log.session_query), dtype=np.int64)
    rank[seen[np.argsort(first_row)]] = np.arange(len(seen))
    width = max(7, len(str(len(seen) - 1)))
    session_ids = np.array([f"s{i:0{width}d}" for i in range(len(seen))], dtype=object)

    names = np.array(EVENTS, dtype=object)
    return object_frame(
        {
            "user_id": users.frame["user_id"].to_numpy()[user],
            "item_id": catalog.item_ids[item],
            "ts": ts.astype(np.int64),
            "event": names[event],
            "session_id": session_ids[rank[session]],
            "value": np.where(event == EVENTS.index("purchase"), catalog.price[item], np.nan),
            "query": _session_queries(log)[session],
        }
    )


class _Phases:
    """A progress bar over the generation phases, showing the one in progress."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(PHASES), desc="synthetic shop", unit="phase")
        self.done = -1

    def start(self, name: str) -> None:
        if self.bar is not None:
            if self.done >= 0:
                self.bar.update(1)
            self.bar.set_postfix_str(name)
        self.done += 1

    def close(self) -> None:
        if self.bar is not None:
            self.bar.update(len(PHASES) - self.bar.n)
            self.bar.close()


def generate(
    users: int = 10_000,
    items: int = 2_000,
    seed: int = 0,
    progress: bool = False,
    config: SynthConfig | None = None,
) -> Dataset:
    """Generate the synthetic shop: a realistic e-commerce log, seeded and fast.

    Interactions carry ``value`` = the item price on purchases and NaN on other events, and
    ``query`` = the search text on every event of a session that started with a search
    (None otherwise). The returned dataset is already validated.
    """
    if users < 1 or items < 1:
        raise ValueError(f"need at least one user and one item, got {users=} {items=}")
    cfg = config or SynthConfig()
    # One independent stream per phase, so a change in one phase leaves the others unchanged.
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)]
    phases = _Phases(progress)
    try:
        phases.start("catalogue")
        catalog = build_catalog(items, cfg, streams[0])
        phases.start("users")
        population = build_users(users, catalog, cfg, streams[1])
        phases.start("sessions")
        log = simulate(population, catalog, cfg, streams[2])
        phases.start("interactions")
        interactions = _interactions(log, population, catalog)
        phases.start("queries")
        queries, qrels, dropped = build_queries(catalog, cfg, streams[3])
        phases.start("validate")
        meta: dict[str, Any] = {
            "name": "synthetic-shop",
            "source": "recsys.data.synth",
            "license": "CC0-1.0",
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "users": users,
            "items": items,
            "config": cfg.as_dict(),
            "start_ts": cfg.end_ts - cfg.days * 86_400,
            "end_ts": cfg.end_ts,
            "value": "item price on purchase events, NaN on other events",
            "query": "search text on every event of a session that began with a search",
            "queries_dropped": dropped,
        }
        dataset = Dataset(
            interactions=interactions,
            items=catalog.items,
            meta=meta,
            users=population.frame,
            queries=queries,
            qrels=qrels,
        ).validate()
    finally:
        phases.close()
    return dataset
