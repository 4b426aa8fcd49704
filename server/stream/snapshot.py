"""The ``ready`` frame: who the tab is, where its stream stands, and — when it cannot resume —
everything it needs to rebuild its view (conversations, the active conversation's messages with
the tool lines of their turns, running turns with their text so far, pending confirmations).

A running turn's text must be exact as of ``ready.last_seq``: the tab appends every
``response_delta`` after that seq to it, so text missing from the snapshot would be a hole and
text from a later delta a duplicate. The turn's owner saves its text with the seq of the delta it
ends with (``{"text", "seq"}``) now and then, not on every delta, so the snapshot takes the saved
text and corrects it from the frame log: it adds the turn's deltas logged after the save up to
``last_seq``, and takes off those logged after ``last_seq`` that the save already holds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from protocol import (
    PROTOCOL_VERSION,
    ActiveTurn,
    ConversationSummary,
    FrameType,
    MessageSnapshot,
    ParamField,
    PendingConfirmation,
    ProtocolError,
    Ready,
    UserInfo,
    param_fields_from_json,
)
from server.config import Settings
from server.knowledge.citations import wire_citations
from server.profiles.catalog import ProfileCatalog
from server.security.auth import Principal
from server.stream.hub import Attachment
from server.stream.tool_lines import tool_lines
from storage.confirmations import ConfirmationStore
from storage.frame_log import LoggedFrame, StreamPosition
from storage.keys import UserKey
from storage.leases import TurnClaim, TurnLeases
from storage.memory_frame_log import AnyFrameLog
from storage.transcripts import TranscriptStore

logger = logging.getLogger(__name__)

SNAPSHOT_CONVERSATIONS = 20
SNAPSHOT_MESSAGES = 50


class Snapshots:
    """Builds ``ready`` frames and the text of running turns from the stores that hold them."""

    def __init__(
        self,
        transcripts: TranscriptStore,
        confirmations: ConfirmationStore,
        leases: TurnLeases,
        frame_log: AnyFrameLog,
        profiles: ProfileCatalog,
        settings: Settings,
    ) -> None:
        self._settings = settings
        self._transcripts = transcripts
        self._confirmations = confirmations
        self._leases = leases
        self._frame_log = frame_log
        self._profiles = profiles

    async def ready(
        self, connection_id: str, principal: Principal, attachment: Attachment
    ) -> Ready:
        """The ``ready`` frame for a tab attached to its stream at ``attachment``."""
        owner = UserKey(tenant=principal.tenant, user=principal.user)
        user = UserInfo(
            id=principal.user,
            tenant=principal.tenant,
            roles=tuple(sorted(principal.roles)),
            name=principal.name,
        )
        ready = Ready(
            protocol=PROTOCOL_VERSION,
            connection_id=connection_id,
            user=user,
            epoch=attachment.position.epoch,
            last_seq=attachment.position.last_seq,
            resumed=attachment.resumed,
            pending_confirmations=await self.pending_confirmations(owner),
            active_turns=await self._active_turns(owner, attachment.position),
            profiles=tuple(
                profile.summary() for profile in self._profiles.available_to(principal.roles)
            ),
            locale=principal.locale,
        )
        if attachment.resumed:
            return ready
        # Rebuilding: the tab also gets the conversations and the newest one's messages.
        conversations = await self._transcripts.list_conversations(
            owner, limit=SNAPSHOT_CONVERSATIONS
        )
        messages: list[MessageSnapshot] = []
        if conversations:
            rows = await self._transcripts.recent_messages(
                owner, conversations[0].id, limit=SNAPSHOT_MESSAGES
            )
            lines = tool_lines(
                rows,
                max_lines=self._settings.snapshot_tool_lines,
                max_views=self._settings.snapshot_tool_views,
            )
            messages = [
                MessageSnapshot(
                    conversation_id=row.conversation_id,
                    message_id=row.id,
                    role=row.role,
                    text=row.text,
                    status=row.status,
                    created_at=iso(row.created_at),
                    client_msg_id=row.client_msg_id,
                    turn_id=row.turn_id,
                    citations=wire_citations(row.citations),
                    tools=lines.get(row.id),
                )
                for row in rows
            ]
        return replace(
            ready,
            conversations=tuple(
                ConversationSummary(
                    conversation_id=conversation.id,
                    title=conversation.title,
                    status=conversation.status,
                    updated_at=iso(conversation.updated_at),
                    profile=conversation.profile,
                )
                for conversation in conversations
            ),
            messages=tuple(messages),
        )

    async def pending_confirmations(self, owner: UserKey) -> tuple[PendingConfirmation, ...]:
        rows = await self._confirmations.pending_for(owner)
        return tuple(
            PendingConfirmation(
                token=row.token,
                conversation_id=row.conversation_id,
                turn_id=row.turn_id,
                action=row.action,
                params=row.params,
                summary=row.summary,
                expires_at=iso(row.expires_at),
                source=row.source,
                destructive=row.destructive,
                fields=_stored_fields(row.fields),
            )
            for row in rows
        )

    async def _active_turns(
        self, owner: UserKey, position: StreamPosition
    ) -> tuple[ActiveTurn, ...]:
        claims = await self._leases.active_turns(owner)
        texts = await self.turn_texts(owner, claims, position)
        return tuple(
            ActiveTurn(
                conversation_id=claim.conversation_id,
                turn_id=claim.turn_id,
                message_id=claim.message_id,
                text=texts[claim.turn_id],
                status="streaming",
            )
            for claim in claims
        )

    async def turn_texts(
        self, owner: UserKey, claims: Sequence[TurnClaim], position: StreamPosition
    ) -> dict[str, str]:
        """The text each turn in ``claims`` had streamed as of ``position``, by turn id.

        A turn with nothing saved yet has streamed nothing: its owner saves an empty text right
        after ``thinking``, before any delta. When the log no longer holds the frames after a
        save (trimmed, or a new epoch), the saved text is the best there is, and that is logged.
        """
        saved: dict[str, SavedText | None] = {}
        for claim in claims:
            saved[claim.turn_id] = SavedText.parse(await self._leases.partial(owner, claim.turn_id))
        points = [entry.seq for entry in saved.values() if entry is not None]
        deltas: list[_Delta] | None = []
        if any(point != position.last_seq for point in points):
            since = min(*points, position.last_seq)
            frames = await self._frame_log.read_after(owner, position.epoch, since)
            if frames is None:
                logger.warning("snapshot of %s: frames after seq %d are gone", owner, since)
                deltas = None
            else:
                deltas = _deltas(frames)
        texts: dict[str, str] = {}
        for turn_id, entry in saved.items():
            if entry is None:
                texts[turn_id] = ""
            elif deltas is None:
                texts[turn_id] = entry.text
            else:
                texts[turn_id] = _text_at(entry, turn_id, deltas, position.last_seq)
        return texts


@dataclass(frozen=True, slots=True)
class SavedText:
    """A turn's text as its owner last saved it: everything up to the delta with ``seq``."""

    text: str
    seq: int

    @classmethod
    def parse(cls, raw: str | None) -> SavedText | None:
        if not raw:
            return None
        fields = orjson.loads(raw)
        return cls(text=str(fields.get("text", "")), seq=int(fields.get("seq", 0)))


@dataclass(frozen=True, slots=True)
class _Delta:
    seq: int
    turn_id: str
    text: str


_DELTA_MARK = f'"type":"{FrameType.RESPONSE_DELTA.value}"'


def _deltas(frames: Sequence[LoggedFrame]) -> list[_Delta]:
    found = []
    for frame in frames:
        # Logged frames start with seq and then type: skip the others without parsing them.
        if _DELTA_MARK not in frame.data[:48]:
            continue
        fields = orjson.loads(frame.data)
        found.append(_Delta(frame.seq, str(fields["turn_id"]), str(fields["delta"])))
    return found


def _text_at(entry: SavedText, turn_id: str, deltas: Sequence[_Delta], at_seq: int) -> str:
    """``entry`` moved to ``at_seq``: the turn's later deltas added, or taken off."""
    low, high = sorted((entry.seq, at_seq))
    between = "".join(d.text for d in deltas if d.turn_id == turn_id and low < d.seq <= high)
    if entry.seq <= at_seq:
        return entry.text + between
    if entry.text.endswith(between):
        return entry.text[: len(entry.text) - len(between)]
    return entry.text  # cannot happen while the saved text is the sum of its deltas


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z``, as every timestamp on the wire."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _stored_fields(stored: Any) -> tuple[ParamField, ...] | None:
    """The card fields stored with a confirmation; None for none (a row from before they
    were stored) or for ones that no longer read: the card then shows the plain values."""
    if not stored:
        return None
    try:
        return param_fields_from_json(stored)
    except ProtocolError:
        logger.warning("stored confirmation fields do not read; the card shows plain values")
        return None
