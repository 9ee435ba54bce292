"""The chat router: understand the turn against the catalog, run the tools, then let the LLM talk.

Each turn is parsed (:func:`agents.understand.parse_turn`) into the session's structured state
(:mod:`agents.shopping_state`). A turn read confidently runs the tools straight away (search with
every filter in force, compare the referenced items, recommend for this shopper, category
guidance, a question about a shown item) and gets a templated reply that the LLM may reword
under a short deadline. A turn the parser cannot read goes to the ReAct master agent when one
is configured (``planner="agent"`` makes that every turn, for capable backends such as vLLM);
without an LLM it gets a plain search of its words and a clarifying question. The trace records
the path each turn took and why.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from agents.agent import ShoppingAgent, Turn, safe_text
from agents.compare import Comparer, item_facts
from agents.llm import LLMClient
from agents.memory import SessionMemory
from agents.replies import (
    NO_LLM,
    answer_reply,
    compare_reply,
    guide_reply,
    list_reply,
    stream_opener,
)
from agents.router_filters import (
    allowed,
    as_refine,
    filters_of,
    price_sorted,
    relaxations,
    turn_only,
)
from agents.shopping_state import SessionState, update
from agents.tools import ToolContext, brief
from agents.understand import Understanding, parse_turn
from agents.vocabulary import CatalogVocabulary
from recsys.catalog import CatalogError
from recsys.decision import Filters

LIST_INTENTS = {"find", "refine", "cheaper", "pricier", "recommend", "more_like"}


@dataclass(frozen=True)
class RouterConfig:
    k: int = 5
    confident: float = 0.5  # below this the turn is ambiguous: the agent plans it, if any
    planner: Literal["router", "agent"] = "router"  # "agent": the agent plans every turn
    deadline_s: float = 3.0  # the whole turn; the LLM's opener gets what is left of it
    reply_timeout_s: float = 2.0  # the opener's own cap
    reply_max_tokens: int = 24
    pool: int = 40  # candidates fetched before exclusions and price sorting


@dataclass
class Plan:
    """What one turn did, for the trace."""

    path: str  # "direct", "agent", "fallback"
    why: str
    tool: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    relaxed: list[str] = field(default_factory=list)


class ChatRouter:
    def __init__(
        self,
        vocab: CatalogVocabulary,
        memory: SessionMemory,
        config: RouterConfig | None = None,
        llm: LLMClient | None = None,
        agent: ShoppingAgent | None = None,
        gate: AbstractContextManager[Any] | None = None,
    ) -> None:
        self.vocab = vocab
        self.memory = memory
        self.config = config or RouterConfig()
        self.llm = llm
        self.agent = agent
        # The turn's CPU work (parse, tools) takes this, so that many chats at once run it a
        # few at a time rather than all contending for the GIL with the event loop (20 chats
        # without it: /healthz p99 454 ms); waiting for the model does not hold it.
        self.gate = gate if gate is not None else nullcontext()

    def run(self, session_id: str, message: str, ctx: ToolContext) -> Iterator[dict[str, Any]]:
        """The turn's events (``step``, ``message``, ``done``); state and trace are stored."""
        started = time.monotonic()
        with self.gate:
            before = SessionState.from_dict(self.memory.state(session_id))
            understood = as_refine(parse_turn(message, self.vocab, before))
            prices = {i: _price(ctx, i) for i in before.last_list}
            state = update(before, understood, prices)
        turn = Turn(session_id, message)
        if self.llm is None:
            turn.degraded.append("llm_unavailable")
        ambiguous = understood.confidence < self.config.confident
        wants_agent = self.config.planner == "agent" or ambiguous
        if wants_agent and self.agent is not None:
            yield from self._agent_turn(session_id, message, ctx, state, understood, turn)
            return
        self.memory.add_turn(session_id, "user", message)
        with self.gate:
            plan, items, draft = self._direct(understood, state, ctx, ambiguous)
        record = {"step": 0, "path": plan.path, "why": plan.why, "tool": plan.tool,
                  "input": plan.input, "understood": _summary(understood),
                  "relaxed": plan.relaxed,
                  "observation": [i["item_id"] for i in items]}  # fmt: skip
        record["tool_ms"] = round((time.monotonic() - started) * 1000, 1)
        yield self._emit(turn, "step", record)
        if items:
            state = state.with_shown(i["item_id"] for i in items)
        elif understood.references and understood.intent == "item_question":
            state = _focus(state, understood)
        left = self.config.deadline_s - (time.monotonic() - started) - 0.1
        turn.answer = yield from self._reply(draft, turn, understood.intent, left)
        turn.items = items
        yield from self._finish(turn, state, started, plan.path, ctx)

    def _agent_turn(
        self, session_id: str, message: str, ctx: ToolContext, state: SessionState,
        understood: Understanding, turn: Turn,
    ) -> Iterator[dict[str, Any]]:  # fmt: skip
        """The master agent plans the turn; the parsed state is its context and is kept."""
        assert self.agent is not None
        ctx.constraints = state.constraints()
        ctx.shown = list(state.shown)
        why = "planner=agent" if self.config.planner == "agent" else "parser not confident"
        self._emit(turn, "route", {"path": "agent", "why": why,
                                   "understood": _summary(understood)})  # fmt: skip
        shown: list[str] = []
        for event in self.agent.run(session_id, message, ctx):
            if event["event"] == "done":
                shown = [str(i) for i in event["data"].get("shown", [])]
                event["data"]["path"] = "agent"
            yield event
        after = state.with_shown(shown) if shown else state
        self.memory.set_state(session_id, after.to_dict())

    def _direct(
        self, u: Understanding, state: SessionState, ctx: ToolContext, ambiguous: bool
    ) -> tuple[Plan, list[dict[str, Any]], str]:
        """Run the tool the parsed intent calls for: (plan, items shown, templated reply)."""
        why = "parsed" if not ambiguous else "not confident, no agent: searched the words"
        if u.intent == "greeting":
            text = "Hello! What are you shopping for? Tell me a budget, a colour or a brand too."
            return Plan("direct", why, "none"), [], text
        if u.intent == "compare":
            return self._compare(u, state, ctx, why)
        if u.intent == "guidance":
            return self._guide(u, state, ctx, why)
        if u.intent == "item_question" and len(u.references) >= 2 and not u.asks:
            return self._compare(u, state, ctx, why)  # "the first and the third"
        if u.intent == "item_question":
            return self._answer(u, state, ctx, why)
        if u.intent in LIST_INTENTS or state.category or u.keywords:
            return self._list(u, state, ctx, why)
        text = (
            "I'm not sure what you are looking for. Which kind of product, and is there a "
            f"budget? For example: {', '.join(_examples(self.vocab))}."
        )
        return Plan("fallback", "nothing to search for", "ask_user"), [], text

    def _list(
        self, u: Understanding, state: SessionState, ctx: ToolContext, why: str
    ) -> tuple[Plan, list[dict[str, Any]], str]:
        assert ctx.engine is not None
        if u.intent == "recommend":
            # "what do you suggest for me?": the shopper's taste, within what this turn says,
            # not inside the filters of the search before it
            state = turn_only(state, u)
        leaf = state.category.split(" > ")[-1].lower() if state.category else ""
        # words the catalog never uses match nothing ("shopping", "pair", "tips"): the query
        # keeps the catalog's words, or the category's name
        known = [w for w in state.keywords if w in self.vocab.known]
        words = " ".join(known) or leaf or " ".join(state.keywords)
        exclude = set(state.last_list) if u.intent in {"cheaper", "pricier", "more_like"} else set()
        if u.intent == "more_like" and u.references and state.last_list:
            anchor = _referenced(state, u.references[:1], ctx)
            if anchor:
                words = str(anchor[0].get("title", words))
        filters = filters_of(state, exclude)
        tool = "recommend_for_user" if u.intent == "recommend" else "search_products"
        queries = [words, *([leaf] if leaf and words != leaf else [])]
        found, relaxed = self._first_match(ctx, tool, queries, filters, state, list(u.attributes))
        found = price_sorted(ctx, found, state.sort)[: self.config.k]
        items = [brief(ctx.catalog, i) for i in found]
        what = f"'{words}'" if tool == "search_products" else "you"
        plan = Plan("direct", why, tool, {"query": words, **state.constraints()}, relaxed)
        return plan, items, list_reply(what, state.constraints(), items, plan.relaxed)

    def _first_match(
        self, ctx: ToolContext, tool: str, queries: list[str], filters: Filters,
        state: SessionState, asked: list[str],
    ) -> tuple[list[int], list[str]]:  # fmt: skip
        """The first non-empty answer: the exact filters with each query (the words, then the
        category alone), then fewer filters; and what had to be dropped."""
        assert ctx.engine is not None
        for attempt in relaxations(state, asked):
            for query in queries if tool == "search_products" else [""]:
                try:
                    if tool == "recommend_for_user":
                        found = ctx.engine.recommend(ctx.user_id, self.config.pool,
                                                     attempt(filters))  # fmt: skip
                    else:
                        found = ctx.engine.search(query or "popular", attempt(filters),
                                                  self.config.pool, ctx.user_id)  # fmt: skip
                except (CatalogError, ValueError):
                    found = []
                found = allowed(ctx, found, state)
                if found:
                    return found, [attempt.name] if attempt.name else []
        return [], []

    def _compare(
        self, u: Understanding, state: SessionState, ctx: ToolContext, why: str
    ) -> tuple[Plan, list[dict[str, Any]], str]:
        positions = u.references if len(u.references) >= 2 else [0, 1]
        rows = _referenced(state, positions, ctx)
        ids = [str(r["item_id"]) for r in rows]
        comparer = ctx.comparer or Comparer(None, ctx.catalog)  # type: ignore[arg-type]
        table = comparer.table(comparer.facts(ids)) if len(ids) >= 2 else {}
        titles = {str(r["item_id"]): str(r.get("title", r["item_id"])) for r in rows}
        return Plan("direct", why, "compare_items", {"item_ids": ids}), rows, compare_reply(
            table, titles if len(ids) >= 2 else {}
        )

    def _guide(
        self, u: Understanding, state: SessionState, ctx: ToolContext, why: str
    ) -> tuple[Plan, list[dict[str, Any]], str]:
        category = u.category or state.category
        if not category:
            return Plan("fallback", "guidance without a category", "ask_user"), [], (
                "Which kind of product would you like advice on?"
            )
        comparer = ctx.comparer or Comparer(None, ctx.catalog)  # type: ignore[arg-type]
        facts = comparer.guide_facts(category)
        return Plan("direct", why, "guide", {"category": category}), [], guide_reply(
            category, facts
        )

    def _answer(
        self, u: Understanding, state: SessionState, ctx: ToolContext, why: str
    ) -> tuple[Plan, list[dict[str, Any]], str]:
        rows = _referenced(state, u.references[:1] or [0], ctx)
        if not rows:
            return Plan("fallback", "no item to answer about", "ask_user"), [], (
                "Which product do you mean? Search for something first, then ask about it."
            )
        index = ctx.catalog.index[str(rows[0]["item_id"])]
        facts = item_facts(ctx.catalog, index)
        plan = Plan("direct", why, "get_item", {"item_id": rows[0]["item_id"], "asks": u.asks})
        return plan, rows, answer_reply(facts, u.asks)

    def _reply(
        self, draft: str, turn: Turn, intent: str, left: float
    ) -> Generator[dict[str, Any], None, str]:
        """The templated draft, opened by one sentence of the LLM's when it is in time and
        usable, streamed as ``delta`` events while it is written (``{"reset": true}`` takes
        them back when the sentence turns out unusable or late); the draft alone otherwise
        (flagged). Answers of fact (compare, guidance, a question about an item) are the
        catalog's alone: a small model's sentence there states things the catalog does not."""
        if self.llm is None or intent not in LIST_INTENTS:
            return draft
        if left <= 0.05:
            turn.degraded.append("llm_timeout")
            return draft
        timeout = min(self.config.reply_timeout_s, left)
        opener = stream_opener(self.llm, turn.message, draft, timeout,
                               self.config.reply_max_tokens, self.vocab.known)  # fmt: skip
        streamed = False
        while True:
            try:
                words = next(opener)
            except StopIteration as finished:
                said, why = finished.value
                break
            streamed = True
            yield {"event": "delta", "data": {"text": words}}  # not traced: the message is
        if said is None:
            turn.degraded.append(why)  # the templated reply stands
            if streamed:
                yield {"event": "delta", "data": {"reset": True}}
            return draft
        if why:  # a sentence was streamed, then the model went wrong: the sentence stays
            yield {"event": "delta", "data": {"reset": True}}
            yield {"event": "delta", "data": {"text": said}}
        yield {"event": "delta", "data": {"text": "\n"}}
        return f"{said}\n{draft}"

    def _finish(
        self, turn: Turn, state: SessionState, started: float, path: str, ctx: ToolContext
    ) -> Iterator[dict[str, Any]]:
        text = safe_text(turn.answer, ctx.catalog.index, set(state.shown))
        notes = [NO_LLM] if "llm_unavailable" in turn.degraded else []
        yield self._emit(turn, "message", {"text": text, "items": turn.items,
                                           "degraded": turn.degraded, "notes": notes})  # fmt: skip
        self.memory.add_turn(turn.session_id, "assistant", text)
        self.memory.set_state(turn.session_id, state.to_dict())
        shown = [str(i["item_id"]) for i in turn.items]
        yield self._emit(turn, "done", {"seconds": round(time.monotonic() - started, 3),
                                        "path": path, "shown": shown,
                                        "degraded": turn.degraded})  # fmt: skip

    def _emit(self, turn: Turn, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        event = {"event": kind, "data": data}
        turn.events.append(event)
        self.memory.add_trace(turn.session_id, {"message": turn.message, **event})
        return event


def _referenced(
    state: SessionState, positions: list[int], ctx: ToolContext
) -> list[dict[str, Any]]:
    ids = state.last_list
    index = ctx.catalog.index
    out = []
    for p in positions:
        if -len(ids) <= p < len(ids) and ids[p] in index:
            out.append(brief(ctx.catalog, index[ids[p]]))
    return out


def _focus(state: SessionState, u: Understanding) -> SessionState:
    from dataclasses import replace

    ids = state.last_list
    p = u.references[0]
    return replace(state, focus=ids[p]) if -len(ids) <= p < len(ids) else state


def _price(ctx: ToolContext, item_id: str) -> float | None:
    i = ctx.catalog.index.get(item_id)
    if i is None or ctx.catalog.price is None:
        return None
    value = float(ctx.catalog.price[i])
    return value if np.isfinite(value) else None


def _summary(u: Understanding) -> dict[str, Any]:
    doc = u.to_dict()
    return {k: v for k, v in doc.items() if v not in (None, [], {}, False)}


def _examples(vocab: CatalogVocabulary) -> list[str]:
    leaves = vocab.leaves[:3]
    found = [f"'{leaf.split(' > ')[-1].lower()} under 50'" for leaf in leaves]
    return found or ["'a gift under 50'"]
