"""The per-turn checks of benchmarks/agent_tasks.py: each chat turn judged against the shop's
truth (what was asked, what the catalog holds, what the tools returned)."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.agent_dialogues import (  # noqa: E402
    Dialogue,
    ShopTruth,
    TurnPlan,
)
from recsys.artifacts import Bundle, TrainConfig, load_bundle, train_bundle  # noqa: E402

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
