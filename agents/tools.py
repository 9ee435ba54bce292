"""The shopping agent's tools: typed, self-describing, checked when registered.

A tool is a name, a description, a pydantic input model (every field described) and a function
of (validated input, :class:`ToolContext`) returning JSON-able data. The registry refuses a tool
that breaks these rules when it is registered, not when the model first calls it; the agent can
only call registered tools (their names are an enum in its action schema) and a bad input or a
failing tool comes back to it as an observation, never as a crash.

Tools act for the session's shopper: the user id comes from the session, never from the model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.compare import Comparer, item_facts
from agents.port import EnginePort
from recsys.catalog import Catalog
from recsys.decision import Filters

NAME = re.compile(r"^[a-z][a-z_]{2,40}$")


class ToolError(ValueError):
    """A tool definition breaks the registry's rules (raised when it is registered)."""


@dataclass
class ToolContext:
    """What tools may touch, built per turn by the server."""

    catalog: Catalog
    search: Callable[[str, float | None, int], list[int]]  # query, price cap, k -> item indexes
    recommend: Callable[[int], list[int]]  # k -> item indexes for the session's shopper
    comparer: Comparer | None = None
    constraints: dict[str, Any] = field(default_factory=dict)  # the shopper's, e.g. price_max
    shown: list[str] = field(default_factory=list)  # item ids shown in this session
    engine: EnginePort | None = None  # the full port, for callers that filter on more
    user_id: str | None = None  # the session's shopper (None: anonymous)

    @classmethod
    def over(
        cls, engine: EnginePort, user_id: str | None, comparer: Comparer | None = None
    ) -> ToolContext:
        """Tools acting for ``user_id`` (None: an anonymous shopper) through ``engine``."""

        def search(query: str, cap: float | None, k: int) -> list[int]:
            return engine.search(query, Filters(price_max=cap), k, user_id)

        def recommend(k: int) -> list[int]:
            return engine.recommend(user_id, k, Filters())

        return cls(engine.catalog, search, recommend, comparer, engine=engine, user_id=user_id)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    run: Callable[[Any, ToolContext], Any]
    terminal: bool = False  # its result ends the turn (ask_user)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input": self.input_model.model_json_schema(),
        }


class ToolRegistry:
    def __init__(self) -> None:
        self.tools: dict[str, Tool] = {}

    def register(self, tool: Tool) -> Tool:
        if not NAME.match(tool.name):
            raise ToolError(f"tool name {tool.name!r} must match {NAME.pattern}")
        if tool.name in self.tools:
            raise ToolError(f"tool {tool.name!r} is registered already: {sorted(self.tools)}")
        if len(tool.description.strip()) < 20:
            raise ToolError(f"tool {tool.name!r} needs a description saying what it does")
        if not (isinstance(tool.input_model, type) and issubclass(tool.input_model, BaseModel)):
            raise ToolError(f"tool {tool.name!r}: input_model must be a pydantic model")
        bare = [n for n, f in tool.input_model.model_fields.items() if not f.description]
        if bare:
            raise ToolError(f"tool {tool.name!r}: input fields {bare} have no description")
        if not callable(tool.run):
            raise ToolError(f"tool {tool.name!r}: run is not callable")
        self.tools[tool.name] = tool
        return tool

    def call(self, name: str, raw: Any, ctx: ToolContext) -> tuple[bool, Any]:
        """(ok, result or error text): unknown tools and bad inputs are errors, not crashes."""
        tool = self.tools.get(name)
        if tool is None:
            return False, f"unknown tool {name!r}; the tools are {sorted(self.tools)}"
        try:
            args = tool.input_model.model_validate(raw if isinstance(raw, dict) else {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in exc.errors()
            )
            return False, f"bad input for {name}: {problems}"
        try:
            return True, tool.run(args, ctx)
        except (ValueError, KeyError, LookupError) as exc:
            return False, f"{name} failed: {exc}"


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchInput(_Input):
    query: str = Field(min_length=1, max_length=200, description="What to look for.")
    max_price: float | None = Field(default=None, gt=0, description="Highest price, if any.")
    k: int = Field(default=5, ge=1, le=10, description="How many products.")


class RecommendInput(_Input):
    k: int = Field(default=5, ge=1, le=10, description="How many products.")


class ItemInput(_Input):
    item_id: str = Field(min_length=1, max_length=128, description="A product id shown before.")


class CompareInput(_Input):
    item_ids: list[str] = Field(min_length=2, max_length=4, description="Product ids to compare.")


class AskInput(_Input):
    question: str = Field(min_length=3, max_length=200, description="The clarifying question.")


def brief(catalog: Catalog, item: int) -> dict[str, Any]:
    row = catalog.row(item)
    return {
        k: row.get(k) for k in ("item_id", "title", "price", "category") if row.get(k) is not None
    }


def _items(ctx: ToolContext, idx: list[int]) -> list[dict[str, Any]]:
    out = [brief(ctx.catalog, i) for i in idx]
    ctx.shown.extend(str(o["item_id"]) for o in out if str(o["item_id"]) not in ctx.shown)
    return out


def _search(args: SearchInput, ctx: ToolContext) -> list[dict[str, Any]]:
    cap = args.max_price if args.max_price is not None else ctx.constraints.get("price_max")
    return _items(ctx, ctx.search(args.query, cap, args.k))


def _recommend(args: RecommendInput, ctx: ToolContext) -> list[dict[str, Any]]:
    return _items(ctx, ctx.recommend(args.k))


def _get_item(args: ItemInput, ctx: ToolContext) -> dict[str, Any]:
    index = ctx.catalog.index
    if args.item_id not in index:
        raise KeyError(f"no product {args.item_id!r}")
    facts = item_facts(ctx.catalog, index[args.item_id])
    if args.item_id not in ctx.shown:
        ctx.shown.append(args.item_id)
    return facts


def _compare(args: CompareInput, ctx: ToolContext) -> dict[str, Any]:
    if ctx.comparer is None:
        raise ValueError("comparison is not available")
    return ctx.comparer.table(ctx.comparer.facts(args.item_ids))


def _ask(args: AskInput, ctx: ToolContext) -> str:
    return args.question


def default_tools() -> ToolRegistry:
    registry = ToolRegistry()
    registry.register(
        Tool(
            "search_products",
            "Search the shop's catalog for products matching "
            "a description, optionally under a price.",
            SearchInput,
            _search,
        )
    )
    registry.register(
        Tool(
            "recommend_for_user",
            "Products picked for this shopper from what they looked at and bought before.",
            RecommendInput,
            _recommend,
        )
    )
    registry.register(
        Tool(
            "get_item",
            "All catalog facts about one product: price, brand, category, attributes.",
            ItemInput,
            _get_item,
        )
    )
    registry.register(
        Tool(
            "compare_items",
            "Catalog facts of 2 to 4 products side by side, attribute by attribute.",
            CompareInput,
            _compare,
        )
    )
    registry.register(
        Tool(
            "ask_user",
            "Ask the shopper one clarifying question when the request is too vague to search.",
            AskInput,
            _ask,
            terminal=True,
        )
    )
    return registry  # fmt: skip
