"""Hand-off: the model moves a conversation to another profile (copilot).

A profile may list profiles it can hand a conversation over to (``handoff = ["ops"]``). Its
turns then offer the model a built-in ``handoff`` tool whose ``profile`` argument may only name
those targets that the user's roles also allow. Calling it stores the new profile on the
conversation, keeps a note saying why in its transcript (role ``note``, in the snapshot and
REST like a message), tells every tab with a logged ``conversation_updated`` that carries the
new profile and that note, and switches the running turn over: the model's next round in
the same turn already sees the new profile's prompt and tools, and so do all later turns.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import orjson

from protocol import ConversationUpdated, encode
from server.ops import metrics
from server.profiles.catalog import Profile, ProfileCatalog
from server.stream.hub import FrameHub
from server.tools.registry import ToolOutcome
from storage.transcripts import TranscriptStore

if TYPE_CHECKING:
    from server.turns.llm import ToolCallRequest
    from server.turns.turn_state import RunningTurn

logger = logging.getLogger(__name__)

HANDOFF_TOOL = "handoff"
REASON_MAX_CHARS = 300


class Handoffs:
    """Offers the ``handoff`` tool to profiles that may hand over, and carries out its calls."""

    def __init__(
        self, catalog: ProfileCatalog, transcripts: TranscriptStore, hub: FrameHub
    ) -> None:
        self._catalog = catalog
        self._transcripts = transcripts
        self._hub = hub

    def tool_for(self, profile: Profile, roles: frozenset[str]) -> dict[str, Any] | None:
        """The ``handoff`` tool in the OpenAI format, or None when ``profile`` has no target
        this user may use."""
        targets = self._catalog.handoff_targets(profile, roles)
        if not targets:
            return None
        choices = "; ".join(
            f"{target.id}: {target.title}"
            + (f" ({target.description})" if target.description else "")
            for target in targets
        )
        return {
            "type": "function",
            "function": {
                "name": HANDOFF_TOOL,
                "description": (
                    "Hand this conversation over to another assistant profile when the user's "
                    f"request belongs there. Profiles: {choices}."
                ),
                "parameters": {
                    "type": "object",
                    "properties": {
                        "profile": {
                            "type": "string",
                            "enum": [target.id for target in targets],
                            "description": "the profile to hand the conversation to",
                        },
                        "reason": {
                            "type": "string",
                            "description": "why, in a short sentence the user will see",
                        },
                    },
                    "required": ["profile", "reason"],
                    "additionalProperties": False,
                },
            },
        }

    def handles(self, turn: RunningTurn, name: str) -> bool:
        """Whether the call ``name`` of ``turn`` is a hand-off (its profile may hand over)."""
        return (
            name == HANDOFF_TOOL
            and turn.profile is not None
            and bool(self._catalog.handoff_targets(turn.profile, frozenset(turn.request.roles)))
        )

    async def run(self, turn: RunningTurn, call: ToolCallRequest) -> ToolOutcome:
        """Move the turn's conversation to the profile the call names; a refusal the model
        sees when the arguments do not name an allowed target."""
        current = turn.profile
        assert current is not None
        request = turn.request
        arguments = _arguments(call.arguments)
        target_id = arguments.get("profile")
        reason = " ".join(str(arguments.get("reason") or "").split())[:REASON_MAX_CHARS]
        targets = {
            target.id: target
            for target in self._catalog.handoff_targets(current, frozenset(request.roles))
        }
        target = targets.get(target_id) if isinstance(target_id, str) else None
        if target is None:
            allowed = ", ".join(sorted(targets)) or "none"
            message = (
                f"cannot hand over to {target_id!r}: profile {current.id!r} may hand over to "
                f"{allowed}"
            )
            return ToolOutcome(False, {"error": message}, message)
        owner = request.owner
        await self._transcripts.set_profile(owner, request.conversation_id, target.id)
        conversation = await self._transcripts.conversation(owner, request.conversation_id)
        note = f"Handed over from {current.title} to {target.title}"
        if reason:
            note += f": {reason}"
        # Kept in the transcript first: a tab that rebuilds from a snapshot after seeing the
        # frame below finds the note there.
        await self._transcripts.add_note(owner, conversation.id, note, turn_id=turn.turn_id)
        await self._hub.publish(
            owner,
            [
                encode(
                    ConversationUpdated(
                        conversation_id=conversation.id,
                        status=conversation.status,
                        profile=target.id,
                        note=note,
                    )
                )
            ],
        )
        metrics.profile_handoff(current.id, target.id)
        logger.info("conversation handed over from profile %s to %s", current.id, target.id)
        turn.profile = target
        return ToolOutcome(
            True,
            {"handed_over_to": target.id, "title": target.title, "note": note},
            note,
        )


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
