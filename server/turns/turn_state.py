"""What a turn is while it runs: the request that started it and its state on this worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, fields
from typing import Any

import orjson

from protocol import ToolResult, TurnStatus
from server.profiles.catalog import Profile
from server.turns.llm import ModelUsage
from storage.keys import UserKey


@dataclass(slots=True)
class TurnRequest:
    """Everything needed to run a turn, also on a worker other than the one that got the
    message (so it is JSON-serialisable for the conversation's queue)."""

    tenant: str
    user: str
    roles: list[str]
    conversation_id: str
    user_message_id: str
    client_msg_id: str
    context: dict[str, Any] | None = None
    # A continuation turn (after an approval was decided or expired) answers this note
    # instead of a user message.
    note: str | None = None
    # The user's own token, for tool sources with auth = "passthrough" (kept while queued).
    user_token: str | None = field(default=None, repr=False)
    # The tab that sent the message: its page tools run there first (server/tools/page_tools).
    connection_id: str | None = None

    @property
    def owner(self) -> UserKey:
        return UserKey(tenant=self.tenant, user=self.user)

    def dumps(self) -> str:
        return orjson.dumps(
            {
                "tenant": self.tenant,
                "user": self.user,
                "roles": self.roles,
                "conversation_id": self.conversation_id,
                "user_message_id": self.user_message_id,
                "client_msg_id": self.client_msg_id,
                "context": self.context,
                "note": self.note,
                "user_token": self.user_token,
                "connection_id": self.connection_id,
            }
        ).decode()

    @classmethod
    def loads(cls, text: str) -> TurnRequest:
        # Keys this release does not know are left out: a newer worker may have queued the
        # request during a rolling deploy.
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in orjson.loads(text).items() if key in known})


@dataclass(slots=True)
class RunningTurn:
    request: TurnRequest
    turn_id: str
    message_id: str
    task: asyncio.Task[None] | None = None
    text: str = ""
    last_delta_seq: int = 0
    stop_status: TurnStatus | None = None  # why the turn was stopped early, if it was
    usage: list[ModelUsage] = field(default_factory=list)
    tool_rounds: list[dict[str, Any]] = field(default_factory=list)
    # The tool_result sent for each call of the current round, kept with the call's result so
    # that a tab rebuilding from the snapshot shows the same line (server/stream/tool_lines).
    shown: dict[str, ToolResult] = field(default_factory=dict)
    # The confirmation token of each call of this turn whose card waits for the user.
    awaiting: dict[str, str] = field(default_factory=dict)
    # The conversation's profile, read when the turn starts; a hand-off replaces it.
    profile: Profile | None = None
