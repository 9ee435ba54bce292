"""POST /v1/chat (server-sent events) and GET /v1/chat/{session_id}/trace."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import StreamingResponse

from serving.chat.protocol import ChatRequest, TraceResponse
from serving.chat.service import ChatService
from serving.deps import ListDepsDep, ServedDep
from serving.engine_port import ServedEngine
from serving.errors import error_responses

router = APIRouter(prefix="/v1", tags=["chat"])


async def chat_service(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat
    return service


ChatDep = Annotated[ChatService, Depends(chat_service)]


@router.post(
    "/chat",
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(403, 422, 503)},
    summary="One turn with the shopping agent, streamed as server-sent events",
)
async def chat(
    body: ChatRequest, served: ServedDep, deps: ListDepsDep, service: ChatDep
) -> StreamingResponse:
    """Events: `step` (thought, action, observation, timings, tokens) per agent step, then
    `message` (the answer and the items it shows), then `done`. A step budget and a deadline
    bound the turn; a failing LLM falls back to a plain search, flagged in `degraded`."""
    # 403 if not the owner; the memory's write happens off the event loop
    issued = await deps.llm_pool.run(
        lambda: service.owners.admit(body.session_id, body.session_token)
    )
    engine = ServedEngine(served, deps, endpoint="chat")
    # on the LLM pool: chats never hold the threads health, metrics and events run on
    events = deps.llm_pool.iterate(service.stream(engine, deps.llm, body, issued))
    headers = {"X-Session-Token": issued} if issued else None
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


@router.get(
    "/chat/{session_id}/trace",
    response_model=TraceResponse,
    responses=error_responses(403, 422),
    summary="The full chain of a conversation",
)
def trace(  # a plain def: FastAPI runs it in the thread pool, the memory read off the loop
    service: ChatDep,
    session_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=128,
            pattern=r"^[A-Za-z0-9_.:-]+$",
            description="The conversation.",
        ),
    ],
    token: Annotated[
        str | None,
        Header(
            alias="X-Session-Token",
            min_length=8,
            max_length=128,
            description="The token the session's first turn returned.",
        ),
    ] = None,
) -> TraceResponse:
    service.owners.check(session_id, token)  # 403 unless the caller owns the session
    return TraceResponse(session_id=session_id, events=service.memory.trace(session_id))
