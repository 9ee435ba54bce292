"""Chat sessions belong to whoever started them: a token from the first turn.

The first turn of a session id issues a random token (returned to the caller once); the
session memory keeps only its sha256. Continuing the session or reading its trace needs the
token, so knowing someone's session id is not enough to read or steer their conversation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from agents.memory import SessionMemory

# "#" is outside the session-id alphabet, so no caller's session id can name this record
OWNER_SUFFIX = "#owner"


class SessionForbiddenError(PermissionError):
    """The session exists and the caller did not show its token."""

    def __init__(self, session_id: str, given: bool) -> None:
        why = "a wrong session_token" if given else "no session_token"
        super().__init__(
            f"session {session_id!r} belongs to the caller that started it; {why} was sent "
            "(send the session_token returned by its first turn, or start a new session id)"
        )
        self.param = "session_token"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionOwners:
    def __init__(self, memory: SessionMemory) -> None:
        self.memory = memory

    def admit(self, session_id: str, token: str | None) -> str | None:
        """The new token when this turn starts the session; None when ``token`` proves
        ownership of an existing one; :class:`SessionForbiddenError` otherwise."""
        record = self.memory.state(session_id + OWNER_SUFFIX)
        stored = record.get("sha256") if isinstance(record, dict) else None
        if not stored:
            issued = secrets.token_urlsafe(18)
            self.memory.set_state(session_id + OWNER_SUFFIX, {"sha256": _digest(issued)})
            return issued
        self.check(session_id, token, stored)
        return None

    def check(self, session_id: str, token: str | None, stored: str | None = None) -> None:
        """:class:`SessionForbiddenError` unless ``token`` owns ``session_id`` (a session
        nobody started has no trace to protect)."""
        if stored is None:
            record = self.memory.state(session_id + OWNER_SUFFIX)
            stored = record.get("sha256") if isinstance(record, dict) else None
            if not stored:
                return
        if token is None or not hmac.compare_digest(_digest(token), str(stored)):
            raise SessionForbiddenError(session_id, token is not None)
