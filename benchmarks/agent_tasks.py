"""Task success of the shopping chat: seeded simulated shoppers on the synthetic shop.

    python benchmarks/agent_tasks.py [--dialogues 30 --seed 0 --users 3000 --items 1500
                                      --llm off|on|both --threads 2]

Builds (once, cached under var/bench/agent_tasks/) a synthetic shop and a quick bundle (popular,
covisit, als and attributes sources, no ranker), then plays multi-turn dialogues
(:mod:`benchmarks.agent_dialogues`: a known shopper, a leaf category, a budget between its 40th
and 80th price percentile, an attribute value among its in-budget items) through the chat's own
code in process (``ChatService.stream``, as ``POST /v1/chat`` runs it), once with the packaged
LLM and once without. Every turn is checked against the catalog:

- find: something shown, every item in the category (or below it) and within the budget;
- refine: the same, and every item has the attribute value asked for;
- compare: a compare step whose item ids are the referenced positions of the previous list;
- cheaper: every item below the previous list's dearest, their median below its median, and
  still in the category, budget and attribute asked for; an empty answer passes only when the
  catalog has no cheaper item (below 0.8 x the previous median, the parser's rule) under those
  constraints and the reply says it found nothing;
- recommend: something shown, by ``recommend_for_user``;
- guidance: the reply names at least two attribute keys of the category;
- every turn: it ended (``done`` last), and every item id in ``message.items`` or in the reply
  text is a catalog id that a tool returned in this session (a ``step`` observation).

Reports success per intent, turn wall time p50/p95 (per ``ChatService.stream`` call), the share
of degraded turns per mode, and every failing turn with why. Prints one JSON document and writes
benchmarks/results/agent_tasks.json and agent_tasks.png. Speeds are this machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.layer import LLMLayer  # noqa: E402
from agents.llm import LLMError, LLMSettings  # noqa: E402
from agents.memory import SQLiteMemory  # noqa: E402
from benchmarks.agent_dialogues import (  # noqa: E402
    INTENTS,
    Dialogue,
    ShopTruth,
    TurnPlan,
    make_dialogues,
    positions_for,
)
from recsys.artifacts import Bundle, TrainConfig, load_bundle, train_bundle  # noqa: E402
from serving.chat.protocol import ChatRequest  # noqa: E402
from serving.chat.service import ChatService  # noqa: E402
from serving.engine_port import ServedEngine  # noqa: E402
from serving.lists.service import ListDeps  # noqa: E402
from serving.metrics import ServingMetrics  # noqa: E402
from serving.state import Served  # noqa: E402

SOURCES = ("popular", "covisit", "als", "attributes")
CACHE = ROOT / "var" / "bench" / "agent_tasks"
NOTHING = re.compile(
    r"\b(nothing|no (?:products?|items?|results?|matches)|could ?n[o']t find|none)\b", re.I
)
DROPPED = re.compile(r"\b(drop(ped)?|without|relax(ed)?|ignor(e|ed|ing))\b", re.I)
CHEAPER_SHARE = 0.8
OPENER_OVER_NOTHING = re.compile(r"\S.*\n(I found nothing|I'm not sure)")
LIST_TOOLS = {
    "search_products",
    "recommend_for_user",
}  # agents.shopping_state: "cheaper" caps at 0.8 x the shown median


def shop(users: int, items: int, seed: int, cache: Path) -> Bundle:
    """The synthetic shop's bundle, trained once per size and seed."""
    path = cache / f"shop-{users}x{items}-seed{seed}"
    if not (path / "manifest.json").is_file():
        from recsys.data.synth import generate

        ds = generate(users=users, items=items, seed=seed)
        config = TrainConfig(sources=SOURCES, ranking=None, seed=seed)
        building = path.with_name(path.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        train_bundle(ds, building, config)
        shutil.rmtree(path, ignore_errors=True)
        building.rename(path)
    return load_bundle(path)


# --- one turn: events, checks -----------------------------------------------------------------


@dataclass
class Session:
    """What the checks remember of one dialogue: tool results, the last list, what was said."""

    returned: set[str] = field(default_factory=set)  # ids any tool returned so far
    last_items: list[str] = field(default_factory=list)  # the previous list shown
    refined: bool = False  # the attribute was asked for
    failed: bool = False  # an earlier turn failed a check: later ones may inherit its mistake


def events_of(blocks: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in blocks:
        head, _, data = block.strip().partition("\n")
        out.append((head.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def catalog_ids(value: Any, known: dict[str, int]) -> Iterator[str]:
    """Every catalog id inside an observation (a list of ids or products, a facts object, a
    compare table keyed by id), as a value or a key."""
    if isinstance(value, str):
        if value in known:
            yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if str(k) in known:
                yield str(k)
            yield from catalog_ids(v, known)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from catalog_ids(v, known)


@dataclass
class Checked:
    failures: list[dict[str, Any]] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: Any = None) -> None:
        self.checks.append(name)
        if not ok:
            self.failures.append({"cause": name, "detail": detail})


class Judge:
    """The checks of each intent, against the catalog's truth."""

    def __init__(self, truth: ShopTruth) -> None:
        self.truth = truth
        ids = [str(i) for i in truth.ids]
        prefix = {re.sub(r"\d+$", "", i) for i in ids}
        shaped = all(re.fullmatch(r"[A-Za-z]+\d+", i) for i in ids) and len(prefix) == 1
        # id-shaped words in a reply ("i00042"), so an invented id is caught too
        self.id_word = re.compile(rf"\b{re.escape(prefix.pop())}\d+\b") if shaped else None

    def common(self, c: Checked, events: list[tuple[str, dict[str, Any]]], s: Session) -> None:
        kinds = [k for k, _ in events]
        c.check("turn_ended", bool(kinds) and kinds[-1] == "done", kinds[-3:])
        message = next((d for k, d in events if k == "message"), None)
        c.check("has_message", message is not None, kinds)
        for kind, data in events:
            if kind == "step":
                s.returned.update(catalog_ids(data.get("observation"), self.truth.index))
        if message is None:
            return
        shown = [str(i.get("item_id")) for i in message.get("items", [])]
        c.check("items_from_tools", set(shown) <= s.returned, sorted(set(shown) - s.returned))
        text = str(message.get("text", ""))
        words = set(re.findall(r"[A-Za-z0-9_.:-]+", text))
        named = {w for w in words if w in self.truth.index}
        if self.id_word is not None:
            named |= set(self.id_word.findall(text))
        c.check("text_ids_from_tools", named <= s.returned, sorted(named - s.returned))

    def feasible(self, step: dict[str, Any], user_id: str) -> int | None:
        """How many items the shopper could be shown under the filters a list step used (in
        stock, not bought, category, attributes, price bounds); None when it used none."""
        t = self.truth
        given = step.get("input") or {}
        if not isinstance(given, dict) or step.get("tool") not in LIST_TOOLS:
            return None
        pool = t.eligible(user_id)
        try:
            if given.get("category"):
                pool &= t.under(str(given["category"]))
            for key, values in (given.get("attributes") or {}).items():
                pool &= np.isin(t.attributes.lower[key], [str(v).lower() for v in values])
        except (KeyError, ValueError):
            return None
        lo, hi = given.get("price_min"), given.get("price_max")
        if lo is not None:
            pool &= t.price >= float(lo)
        if hi is not None:
            pool &= t.price <= float(hi)
        return int(pool.sum())

    def listing(
        self,
        c: Checked,
        d: Dialogue,
        shown: list[str],
        refined: bool,
        may_relax: bool = False,
        context: dict[str, Any] | None = None,
    ) -> None:
        """In the category, within the budget, and (after a refine) of the value asked for;
        ``may_relax``: the catalog has nothing with the value and the reply says it dropped a
        filter, so other values are an honest answer."""
        t = self.truth
        rows = [t.index[i] for i in shown if i in t.index]
        under = t.under(d.category)
        outside = [shown[n] for n, r in enumerate(rows) if not under[r]]
        c.check("in_category", not outside, [(i, str(t.category[t.index[i]])) for i in outside])
        over = [
            (shown[n], float(t.price[r]))
            for n, r in enumerate(rows)
            if not t.price[r] <= d.budget + 1e-9
        ]
        c.check("within_budget", not over, over)
        if refined:
            wanted = d.value.lower()
            missing = [
                (shown[n], sorted(t.value_of(d.key, r)) or None)
                for n, r in enumerate(rows)
                if wanted not in t.value_of(d.key, r)
            ]
            detail = {"wanted": {d.key: d.value}, "got": missing, **(context or {})}
            if missing and may_relax:
                c.notes.append({"relaxed_honestly": detail})
                missing = []
            c.check("has_attribute", not missing, detail)

    def intent(
        self,
        c: Checked,
        plan: TurnPlan,
        d: Dialogue,
        events: list[tuple[str, Any]],
        s: Session,
        positions: list[int],
    ) -> None:
        t = self.truth
        steps = [data for k, data in events if k == "step"]
        message: dict[str, Any] = next((x for k, x in events if k == "message"), {}) or {}
        shown = [str(i.get("item_id")) for i in message.get("items", [])]
        tools = [str(step.get("tool")) for step in steps]
        empty = {
            "reply": str(message.get("text", ""))[:200],
            "feasible_under_tool_filters": [self.feasible(step, d.user_id) for step in steps],
        }
        if plan.intent in {"find", "refine"}:
            c.check("shown_some", bool(shown), empty)
            self.listing(c, d, shown, plan.intent == "refine" or s.refined)
        elif plan.intent == "compare":
            wanted = [s.last_items[p] for p in positions]
            compared = [step for step in steps if step.get("tool") in {"compare_items", "compare"}]
            c.check("compare_tool", bool(compared), tools)
            got = (
                [str(i) for i in (compared[0].get("input") or {}).get("item_ids", [])]
                if (compared)
                else []
            )
            c.check(
                "compared_referenced",
                sorted(got) == sorted(wanted),
                {"wanted": wanted, "got": got, "positions": positions},
            )
        elif plan.intent == "cheaper":
            before = [float(t.price[t.index[i]]) for i in s.last_items]
            prices = [float(t.price[t.index[i]]) for i in shown if i in t.index]
            text = str(message.get("text", ""))
            cap = CHEAPER_SHARE * statistics.median(before)
            pool = t.under(d.category) & t.eligible(d.user_id) & (t.price < cap)
            pool &= t.price <= d.budget
            if s.refined:
                pool &= t.has(d.key, d.value)
            if d.audience:
                pool &= t.has("audience", d.audience)
            pool[[t.index[i] for i in s.last_items]] = False
            exist = [str(t.ids[i]) for i in np.flatnonzero(pool)]
            c.notes.append({"cheaper_in_catalog": len(exist), "cap": round(cap, 2)})
            if prices:
                dear = [(i, p) for i, p in zip(shown, prices, strict=True) if p >= max(before)]
                c.check(
                    "cheaper_than_before",
                    not dear,
                    {"previous_max": max(before), "not_cheaper": dear},
                )
                c.check(
                    "median_lower",
                    statistics.median(prices) < statistics.median(before),
                    {
                        "previous_median": statistics.median(before),
                        "median": statistics.median(prices),
                    },
                )
                said = bool(DROPPED.search(text))
                self.listing(
                    c,
                    d,
                    shown,
                    s.refined,
                    may_relax=not exist and said,
                    context={
                        "cheaper_with_value_in_catalog": len(exist),
                        "reply_says_dropped": said,
                        "trace_relaxed": [x.get("relaxed") for x in steps],
                    },
                )
            else:
                c.check(
                    "cheaper_found_when_exist",
                    not exist,
                    {"cap": round(cap, 2), "cheaper_in_catalog": exist[:8], "count": len(exist)},
                )
                if not exist:
                    c.check("honest_nothing", bool(NOTHING.search(text)), text[:200])
        elif plan.intent == "recommend":
            c.check("shown_some", bool(shown), empty)
            c.check("recommend_tool", "recommend_for_user" in tools, tools)
        elif plan.intent == "guidance":
            under = np.flatnonzero(t.under(d.category))
            keys = [k for k in t.attributes.keys if any(t.attributes.shown[k][i] for i in under)]
            text = str(message.get("text", "")).lower()
            named = [
                k
                for k in keys
                if re.search(rf"\b({re.escape(k)}|{re.escape(k.replace('_', ' '))})\b", text)
            ]
            c.check(
                "names_attribute_keys",
                len(named) >= min(2, len(keys)),
                {"category_keys": keys, "named": named},
            )
            foreign = [i for i in shown if i not in t.index]
            c.check("items_in_catalog", not foreign, foreign)


# --- dialogues --------------------------------------------------------------------------------


def run_mode(
    mode: str,
    served: Served,
    truth: ShopTruth,
    dialogues: list[Dialogue],
    threads: int,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every dialogue, with the LLM on or off: (turn records, what ran)."""
    about: dict[str, Any] = {"llm": mode}
    if mode == "on":
        layer = LLMLayer(LLMSettings(threads=threads))
        started = time.perf_counter()
        try:
            layer.client()  # load the model before any turn is timed
            about["llm_loaded"] = True
            about["load_s"] = round(time.perf_counter() - started, 2)
        except LLMError as exc:
            about["llm_loaded"] = False
            about["why"] = str(exc)
    else:
        layer = LLMLayer(LLMSettings(model_path=Path("/nonexistent.gguf")))
    judge = Judge(truth)
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        service = ChatService(SQLiteMemory(Path(tmp) / "chat.sqlite"))
        engine = ServedEngine(served, ListDeps(ServingMetrics()), "chat")
        for d in tqdm(dialogues, desc=f"llm {mode}", disable=not progress, file=sys.stderr):
            session = Session()
            for n, plan in enumerate(d.turns):
                records.append(play(service, engine, layer, judge, d, n, plan, session, mode))
    if mode == "on" and about.get("llm_loaded"):
        report = layer.client().report()
        about["llm_calls"] = {
            k: {
                "calls": v["calls"],
                "seconds": round(v["seconds"], 2),
                "timeouts": v["timeouts"],
                "errors": v["errors"],
            }
            for k, v in report.items()
        }
    return records, about


def play(
    service: ChatService,
    engine: ServedEngine,
    layer: LLMLayer,
    judge: Judge,
    d: Dialogue,
    n: int,
    plan: TurnPlan,
    session: Session,
    mode: str,
) -> dict[str, Any]:
    """One turn: sent, timed, checked; the session's memory of it updated."""
    record: dict[str, Any] = {
        "mode": mode,
        "dialogue": d.id,
        "turn": n,
        "intent": plan.intent,
        "placement": plan.placement,
        "message": plan.message,
    }
    message, positions = plan.message, list[int]()
    if plan.intent == "compare":
        chosen = positions_for(plan, session.last_items)
        if chosen is None:
            return {**record, "skipped": f"the previous list has {len(session.last_items)} items"}
        message, positions = chosen
    if plan.intent == "cheaper" and not session.last_items:
        return {**record, "skipped": "nothing was shown before"}
    record["message"] = message
    previous = list(session.last_items)
    c = Checked()
    events: list[tuple[str, dict[str, Any]]] = []
    started = time.perf_counter()
    try:
        req = ChatRequest(session_id=f"{mode}-{d.id}", message=message, user_id=d.user_id)
        events = events_of(service.stream(engine, layer, req))
    except Exception as exc:  # a crash is a failed turn, with its reason
        c.check("no_exception", False, f"{type(exc).__name__}: {exc}")
    record["seconds"] = time.perf_counter() - started
    judge.common(c, events, session)
    if events:
        judge.intent(c, plan, d, events, session, positions)
    steps = [data for k, data in events if k == "step"]
    message_data = next((data for k, data in events if k == "message"), {}) or {}
    done = next((data for k, data in events if k == "done"), {}) or {}
    shown = [str(i.get("item_id")) for i in message_data.get("items", [])]
    understood = (steps[0].get("understood") if steps else None) or {}
    record.update(
        {
            "path": done.get("path"),
            "tools": [s.get("tool") for s in steps],
            "parsed": {
                k: understood.get(k)
                for k in (
                    "intent",
                    "confidence",
                    "category",
                    "attributes",
                    "price_max",
                    "references",
                )
                if understood.get(k) is not None
            },
            "step_input": steps[0].get("input") if steps else None,
            "relaxed": steps[0].get("relaxed") if steps else None,
            "degraded": list(message_data.get("degraded", [])),
            "shown": [judge_row(judge.truth, i, d.key) for i in shown],
            "previous": [judge_row(judge.truth, i, d.key) for i in previous]
            if plan.intent in {"compare", "cheaper"}
            else None,
            "text": str(message_data.get("text", ""))[:400],
            "checks": c.checks,
            "failures": c.failures,
            "ok": not c.failures,
            "notes": c.notes,
            "after_failure": session.failed,
        }
    )
    if shown:
        session.last_items = shown
    if plan.intent == "refine":
        session.refined = True
    session.failed = session.failed or bool(c.failures)
    return record


def judge_row(truth: ShopTruth, item_id: str, key: str) -> dict[str, Any]:
    i = truth.index.get(item_id)
    if i is None:
        return {"item_id": item_id, "in_catalog": False}
    return {
        "item_id": item_id,
        "price": float(truth.price[i]),
        "category": str(truth.category[i]),
        key: sorted(truth.value_of(key, i)) or None,
    }


# --- report -----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if values else None


def summarize(records: list[dict[str, Any]], about: dict[str, Any]) -> dict[str, Any]:
    played = [r for r in records if "skipped" not in r]
    seconds = [r["seconds"] for r in played]
    by_intent: dict[str, Any] = {}
    for intent in INTENTS:
        mine = [r for r in played if r["intent"] == intent]
        passed = sum(r["ok"] for r in mine)
        times = [r["seconds"] for r in mine]
        by_intent[intent] = {
            "turns": len(mine),
            "passed": passed,
            "success": round(passed / len(mine), 4) if mine else None,
            "skipped": sum(1 for r in records if r["intent"] == intent and "skipped" in r),
            "p50_s": pct(times, 50),
            "p95_s": pct(times, 95),
        }
    degraded = [r for r in played if r["degraded"]]
    real = [r for r in played if set(r["degraded"]) - {"llm_unavailable"}]
    checks = Counter(name for r in played for name in r["checks"])
    causes = Counter(f"{r['intent']}:{f['cause']}" for r in played for f in r["failures"])
    return {
        **about,
        "turns": len(played),
        "dialogues": len({r["dialogue"] for r in records}),
        "success": round(sum(r["ok"] for r in played) / len(played), 4) if played else None,
        "success_by_intent": by_intent,
        "turn_seconds": {
            "p50": pct(seconds, 50),
            "p95": pct(seconds, 95),
            "mean": round(float(np.mean(seconds)), 4) if seconds else None,
            "max": round(max(seconds), 4) if seconds else None,
        },
        "degraded_share": round(len(degraded) / len(played), 4) if played else None,
        "degraded_share_besides_no_llm": round(len(real) / len(played), 4) if played else None,
        "degraded_reasons": dict(Counter(x for r in played for x in r["degraded"])),
        "paths": dict(Counter(str(r["path"]) for r in played)),
        # not a check: an LLM sentence above a reply that found nothing ("Here's a pink one.")
        "llm_opener_over_nothing_found": sum(
            1 for r in played if not r["shown"] and OPENER_OVER_NOTHING.search(r["text"])
        ),
        "checks_run": dict(checks),
        "failures_by_cause": dict(causes.most_common()),
        "failing_turns": sum(not r["ok"] for r in played),
        "failing_turns_after_an_earlier_failure": sum(
            not r["ok"] and r["after_failure"] for r in played
        ),
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(result["modes"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(len(modes), 1)
    x = np.arange(len(INTENTS))
    for n, mode in enumerate(modes):
        part = result["modes"][mode]["success_by_intent"]
        rates = [part[i]["success"] or 0.0 for i in INTENTS]
        left.bar(x + n * width, rates, width, label=f"LLM {mode}")
        p50 = [max(part[i]["p50_s"] or 0.0, 1e-4) for i in INTENTS]
        p95 = [max(part[i]["p95_s"] or 0.0, 1e-4) for i in INTENTS]
        right.bar(x + n * width, p95, width, alpha=0.35, color=f"C{n}")
        right.bar(x + n * width, p50, width, color=f"C{n}", label=f"LLM {mode} p50 (p95 pale)")
    for ax in (left, right):
        ax.set_xticks(x + width * (len(modes) - 1) / 2, INTENTS, rotation=20)
        ax.legend(fontsize=8)
    left.set_ylim(0, 1.05)
    left.set_ylabel("turns passing every check")
    left.set_title("Task success per intent")
    right.set_yscale("log")
    right.set_ylabel("seconds per turn (log)")
    right.set_title("Turn wall time (in process)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def code_version() -> str | None:
    """The checkout's commit, "+dirty" when agents/ or serving/ have uncommitted changes: the
    chat's code changes under a benchmark, so each result names what it measured."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "agents", "serving"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty.strip() else "")


def main(argv: list[str] | None = None, progress: bool = True) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="the dialogues' seed")
    parser.add_argument("--shop-seed", type=int, default=0, help="the synthetic shop's seed")
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--llm", choices=("on", "off", "both"), default="both")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP and LLM threads")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--transcript", type=Path, help="also write every turn here (JSON lines)")
    args = parser.parse_args(argv)

    from serving.app import limit_compute_threads

    limit_compute_threads(args.threads)
    bundle = shop(args.users, args.items, args.shop_seed, args.cache)
    served = Served.build(bundle)
    limit_compute_threads(args.threads)  # the bundle may have loaded new pools
    truth = ShopTruth(bundle)
    dialogues = make_dialogues(truth, args.dialogues, args.seed)
    modes = ["off", "on"] if args.llm == "both" else [args.llm]
    result: dict[str, Any] = {
        "shop": {
            "users": args.users,
            "items": args.items,
            "seed": args.shop_seed,
            "sources": list(SOURCES),
            "bundle": bundle.version,
        },
        "dialogues": {
            "count": len(dialogues),
            "seed": args.seed,
            "turns_each": len(dialogues[0].turns) if dialogues else 0,
        },
        "code": code_version(),
        "threads": args.threads,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "modes": {},
        "failing_turns": [],
    }
    every: list[dict[str, Any]] = []
    for mode in modes:
        records, about = run_mode(mode, served, truth, dialogues, args.threads, progress)
        every += records
        result["modes"][mode] = summarize(records, about)
        result["failing_turns"] += [r for r in records if "skipped" not in r and not r["ok"]]
    for r in result["failing_turns"]:
        r["seconds"] = round(r["seconds"], 3)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["dialogue_plans"] = [d.to_dict() for d in dialogues]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "agent_tasks.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    plot(result, args.out / "agent_tasks.png")
    if args.transcript is not None:
        lines = [json.dumps(r, default=str) for r in every]
        args.transcript.write_text("\n".join(lines) + "\n")
    print(json.dumps(result, indent=2, default=str))
    return result


if __name__ == "__main__":
    main()
