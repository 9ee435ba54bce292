"""Request and response of POST /v1/chat and GET /v1/chat/{session_id}/trace."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "5" is not 5: the schema says

    session_id: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Conversation id chosen by the caller; memory and trace are kept under it.",
    )
    message: str = Field(min_length=1, max_length=2000, description="What the shopper says.")
    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The shopper, for personal recommendations; the agent cannot choose another.",
    )
    session_token: str | None = Field(
        default=None,
        min_length=8,
        max_length=128,
        description="The token the session's first turn returned (in its `done` event and the "
        "X-Session-Token header); required to continue a session. Omit it on a first turn.",
    )


class TraceResponse(BaseModel):
    session_id: str = Field(description="The conversation.")
    events: list[dict[str, Any]] = Field(
        description="Every event of every turn, in order: step (thought, tool, input, job, "
        "trust_mode, observation, llm_ms, tool_ms, tokens), message, done."
    )


# What POST /v1/chat streams (serving.chat.service.ChatService.stream, agents.agent), shown as
# the 200 response of the OpenAPI schema (serving.openapi_docs).
CHAT_STREAM_DESCRIPTION = """\
A stream of server-sent events (`text/event-stream`), one per agent step and then the answer.
Each event is `event: NAME`, then `data: JSON` (one line), then a blank line. A turn streams:

**`step`**: one per agent step, in order, at most the step budget (4 by default). `data`:
- `step` (integer): the step's number, from 0.
- `thought` (string, at most 200 characters): the model's reasoning.
- `tool` (string): the action: `search_products`, `recommend_for_user`, `get_item`,
  `compare_items`, `ask_user`, or `final_answer` (the model answers); a name the model made up
  comes back as a failed step (`ok` false).
- `input` (object): the tool's input as the model wrote it, e.g. `{"query": "...", "k": 5}`.
- `job` (string, at most 100 characters): what the model says the step is for.
- `trust_mode` (0 or 1): 1 shows the tool's result to the shopper without another model round.
- `llm_ms` (number): milliseconds the model took for this step.
- `tokens` (integer): prompt plus completion tokens of this step.
- `tool_ms` (number): milliseconds the tool took; absent on a `final_answer` step.
- `ok` (boolean): whether the tool ran; absent on a `final_answer` step.
- `observation`: what the tool returned: a list of products
  `{item_id, title, price, category}` (`search_products`, `recommend_for_user`; a field the
  catalog lacks is left out), an object of catalog facts (`get_item`), an object
  attribute -> {item_id: value} (`compare_items`), the question (string, `ask_user`), an error
  message (string) when `ok` is false, or the string `"final answer"` on a `final_answer` step.

**`delta`**: zero or more, before `message`: the reply's opening sentence as the language model
writes it, a few words at a time. `data`: `text` (string) to append, or `reset` (`true`): take
back what the deltas showed (the sentence turned out unusable or late; `message` carries the
reply without it). `message` always carries the whole reply: a client that ignores `delta`
loses nothing but the wait.

**`message`**: once, the answer. `data`:
- `text` (string, at most 600 characters): the answer; item ids that no tool returned are
  replaced by `[removed]`.
- `items` (array): the products shown with the answer, `{item_id, title, price, category}`.
- `degraded` (array of strings): why the turn fell back, empty when it did not (see below).

**`done`**: always last. `data`:
- `seconds` (number): how long the turn took.
- `steps` (integer): how many `step` events the turn streamed.
- `shown` (array of strings): ids of the products this turn's tools returned that earlier
  turns of the conversation had not.
- `degraded` (array of strings): as in `message`.

**`error`**: instead of any `step` and `message`, when no language model can be used (the LLM
layer is not installed or failed to load). `data`: `degraded` (`["llm_unavailable"]`) and
`message` (string, why). It is followed by `done` whose `data` is only
`{"degraded": ["llm_unavailable"]}`.

`degraded` values: `llm_timeout` (a step took longer than its timeout, 12 s by default),
`llm_rejected` (the model's opening sentence failed the checks: a number, a refusal, a loop,
a product word nobody used),
`llm_error` (the model failed or its answer was not the expected JSON), `deadline` (the turn's
deadline, 30 s by default, came), `step_budget` (no answer within the step budget),
`llm_unavailable` (see `error`). A degraded turn
still answers: with the products of the last successful search, else a plain search of the
shopper's words, else their recommendations.

A request refused before the stream starts (invalid body: 422; no bundle served: 503) gets the
JSON error body of the other endpoints instead. A stream that ends without `done` was cut short
by a server error.
"""

CHAT_STREAM_EXAMPLE = """\
event: step
data: {"step": 0, "thought": "Search for waterproof boots under 100.", \
"tool": "search_products", "input": {"query": "waterproof hiking boots", "max_price": 100}, \
"job": "find boots", "trust_mode": 0, "llm_ms": 812.4, "tokens": 431, "tool_ms": 6.2, \
"ok": true, "observation": [{"item_id": "i00042", "title": "Trailmark Waterproof Hiking Boots", \
"price": 89.0, "category": "Outdoor > Footwear > Hiking Boots"}]}

event: step
data: {"step": 1, "thought": "One pair fits.", "tool": "final_answer", \
"input": {"text": "i00042 is waterproof and costs 89."}, "job": "answer", "trust_mode": 0, \
"llm_ms": 640.0, "tokens": 502, "observation": "final answer"}

event: message
data: {"text": "i00042 is waterproof and costs 89.", "items": [{"item_id": "i00042", \
"title": "Trailmark Waterproof Hiking Boots", "price": 89.0, \
"category": "Outdoor > Footwear > Hiking Boots"}], "degraded": []}

event: done
data: {"seconds": 1.47, "steps": 2, "shown": ["i00042"], "degraded": []}

"""
