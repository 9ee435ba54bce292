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


class TraceResponse(BaseModel):
    session_id: str = Field(description="The conversation.")
    events: list[dict[str, Any]] = Field(
        description="Every event of every turn, in order: step (thought, tool, input, job, "
        "trust_mode, observation, llm_ms, tool_ms, tokens), message, done."
    )
