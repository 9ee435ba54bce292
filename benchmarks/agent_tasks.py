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
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.layer import LLMLayer  # noqa: E402
from agents.llm import LLMError, LLMSettings  # noqa: E402
from agents.memory import SQLiteMemory  # noqa: E402
from benchmarks.agent_checks import (  # noqa: E402
    CACHE,
    OPENER_OVER_NOTHING,
    SOURCES,
    Checked,
    Judge,
    Session,
    events_of,
    judge_row,
    shop,
)
from benchmarks.agent_dialogues import (  # noqa: E402
    INTENTS,
    Dialogue,
    ShopTruth,
    TurnPlan,
    make_dialogues,
    positions_for,
)
from recsys.artifacts import load_bundle  # noqa: E402
from serving.chat.protocol import ChatRequest  # noqa: E402
from serving.chat.service import ChatService  # noqa: E402
from serving.engine_port import ServedEngine  # noqa: E402
from serving.lists.service import ListDeps  # noqa: E402
from serving.metrics import ServingMetrics  # noqa: E402
from serving.state import Served  # noqa: E402


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
    parser.add_argument(
        "--bundle", type=Path, help="an existing bundle (e.g. var/demo/bundle, the main job's) "
        "instead of the cached synthetic shop",
    )  # fmt: skip
    args = parser.parse_args(argv)

    from serving.app import limit_compute_threads

    limit_compute_threads(args.threads)
    bundle = (
        load_bundle(args.bundle) if args.bundle
        else shop(args.users, args.items, args.shop_seed, args.cache)
    )  # fmt: skip
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
