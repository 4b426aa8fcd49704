"""Redis key and channel names: the only place that knows them.

Layout, with ``P`` the configured prefix (default ``parley:``) and ``{T}`` a user's hash
tag ``{t:<tenant>:u:<user>}``::

    P{T}:log:meta              hash    epoch, seq: the user's frame log head
    P{T}:log:frames            stream  logged frames; fields s (seq) and f (frame text)
    P{T}:log:writers           hash    writer id -> "<call number> <first seq>" of that
                                       writer's last append, so a retried call is not
                                       applied twice
    P{T}:log:live              channel wake-ups: each append publishes its batch here
    P{T}:turn:<conversation>   string  the conversation's turn slot: the holding turn_id
    P{T}:turns                 hash    turn_id -> claim JSON of the user's running turns
    P{T}:partial:<turn>        string  partial assistant text of a running turn
    P{T}:forgot:<turn>         string  which sweeper retired a lapsed turn (retry safety)
    P{T}:queue:<conversation>  list    messages waiting for the conversation's turn slot
    P{T}:ctx:<conversation>    string  orjson list of chat messages (context cache)
    P{T}:presence              zset    connection id -> expiry (unix ms)
    Pturns:deadlines           zset    "<tenant>:<user>:<conversation>:<turn>" -> lease
                                       deadline (unix s): where sweepers look for lapsed turns
    Pqueues:waiting            zset    "<tenant>:<user>:<conversation>" -> when a message
                                       was last queued there or a sweeper last looked
    Prate:<key parts>          string  fixed-window rate counter
    Pcontrol                   channel worker-to-worker control messages

Every key expires: the log head and stream ``max(2 * max_age, 1 day)`` after the user's
last append or position, ``log:writers`` and ``forgot:`` after a minute, the turn slot
with its lease, ``turns`` a day after the last acquire or renew, presence with its
longest-lived connection, rate counters with their window, and partial text
and context entries after the TTL their caller gives. ``turns:deadlines``
and ``queues:waiting`` have no TTL; release, forget and sweepers remove their entries.

Every per-user key carries the user's hash tag, so Redis Cluster keeps one user's keys
in one slot and a Lua script may touch several of them. The global keys (``turns:deadlines``,
``queues:waiting``, each ``rate:`` counter) are one key each, in slots of their own: they are
written by plain commands or single-key scripts, never by a script beside a user's keys.
Channels follow the same rule: on a cluster they are sharded channels (``SPUBLISH``), and a
user's lives in the user's slot, beside the log whose append script publishes on it.

Parts that come from outside (tenant, user, conversation and turn ids, ...) are escaped
with :func:`escape`, so no id can open a second hash tag, end the tag early, or make two
different ids share a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

DEFAULT_PREFIX = "parley:"

# Percent-encoding only the characters that carry meaning in our keys keeps ordinary
# ids (uuids, numbers, emails) readable in redis-cli while staying reversible: '%' is
# escaped too, so every '%' in an escaped part starts one of these four codes.
_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D", ":": "%3A"})


def escape(part: str) -> str:
    """Percent-encode ``%``, ``{``, ``}`` and ``:`` in one component of a key."""
    return part.translate(_ESCAPES)


def unescape(part: str) -> str:
    """Invert :func:`escape`."""
    return unquote(part)


def user_counter(kind: str, tenant: str, user: str) -> str:
    """The name of one user's rate counter of ``kind`` (for :meth:`KeySpace.rate`).

    Each id is escaped, so no two (tenant, user) pairs share a counter.
    """
    return f"{kind}:u:{escape(tenant)}:{escape(user)}"


def tenant_counter(kind: str, tenant: str) -> str:
    """The name of one tenant's rate counter of ``kind`` (for :meth:`KeySpace.rate`)."""
    return f"{kind}:t:{escape(tenant)}"


@dataclass(frozen=True, slots=True)
class UserKey:
    """Who a piece of state belongs to: one user of one tenant."""

    tenant: str
    user: str

    @property
    def tag(self) -> str:
        """The Redis Cluster hash tag shared by all of this user's keys."""
        return f"{{t:{escape(self.tenant)}:u:{escape(self.user)}}}"


class KeySpace:
    """Builds every key and channel name under one prefix.

    The prefix lets several deployments (or test runs) share one Redis without
    seeing each other's data.
    """

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        """
        Raises:
            ValueError: the prefix contains ``{`` or ``}``, which would move the hash tag.
        """
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"key prefix must not contain braces: {prefix!r}")
        self.prefix = prefix

    def _user(self, user: UserKey, suffix: str) -> str:
        return f"{self.prefix}{user.tag}:{suffix}"

    # -- frame log -------------------------------------------------------------------

    def log_meta(self, user: UserKey) -> str:
        """Hash with the user's log ``epoch`` and last assigned ``seq``."""
        return self._user(user, "log:meta")

    def log_frames(self, user: UserKey) -> str:
        """Stream of the user's logged frames."""
        return self._user(user, "log:frames")

    def log_writers(self, user: UserKey) -> str:
        """Each writer's last append to the log, so a retried call is answered, not redone."""
        return self._user(user, "log:writers")

    def log_channel(self, user: UserKey) -> str:
        """Pub/sub channel each append publishes its batch of frames to."""
        return self._user(user, "log:live")

    # -- turns -----------------------------------------------------------------------

    def turn_slot(self, user: UserKey, conversation_id: str) -> str:
        """The conversation's single turn slot (holds the running turn's id, with a TTL)."""
        return self._user(user, f"turn:{escape(conversation_id)}")

    def active_turns(self, user: UserKey) -> str:
        """Hash of the user's running turns: turn_id -> claim JSON."""
        return self._user(user, "turns")

    def turn_partial(self, user: UserKey, turn_id: str) -> str:
        """Partial assistant text of a running turn."""
        return self._user(user, f"partial:{escape(turn_id)}")

    def turn_forgotten(self, user: UserKey, turn_id: str) -> str:
        """Marker naming the caller that retired a lapsed turn."""
        return self._user(user, f"forgot:{escape(turn_id)}")

    def turn_queue(self, user: UserKey, conversation_id: str) -> str:
        """Messages queued behind the conversation's running turn (double-texting)."""
        return self._user(user, f"queue:{escape(conversation_id)}")

    def turn_deadlines(self) -> str:
        """Global sorted set of running turns scored by lease deadline, for sweepers."""
        return f"{self.prefix}turns:deadlines"

    @staticmethod
    def turn_deadline_member(user: UserKey, conversation_id: str, turn_id: str) -> str:
        """The member naming one turn in :meth:`turn_deadlines`."""
        parts = (user.tenant, user.user, conversation_id, turn_id)
        return ":".join(escape(part) for part in parts)

    @staticmethod
    def parse_turn_deadline_member(member: str) -> tuple[UserKey, str, str]:
        """Invert :meth:`turn_deadline_member`: ``(user, conversation_id, turn_id)``.

        Raises:
            ValueError: ``member`` was not made by :meth:`turn_deadline_member`.
        """
        parts = member.split(":")
        if len(parts) != 4:
            raise ValueError(f"not a turn index member: {member!r}")
        tenant, user, conversation_id, turn_id = (unescape(part) for part in parts)
        return UserKey(tenant, user), conversation_id, turn_id

    def turn_queues_waiting(self) -> str:
        """Global sorted set of conversations with queued messages, for sweepers."""
        return f"{self.prefix}queues:waiting"

    @staticmethod
    def turn_queue_member(user: UserKey, conversation_id: str) -> str:
        """The member naming one conversation in :meth:`turn_queues_waiting`."""
        return ":".join(escape(part) for part in (user.tenant, user.user, conversation_id))

    @staticmethod
    def parse_turn_queue_member(member: str) -> tuple[UserKey, str]:
        """Invert :meth:`turn_queue_member`: ``(user, conversation_id)``.

        Raises:
            ValueError: ``member`` was not made by :meth:`turn_queue_member`.
        """
        parts = member.split(":")
        if len(parts) != 3:
            raise ValueError(f"not a turn queue index member: {member!r}")
        tenant, user, conversation_id = (unescape(part) for part in parts)
        return UserKey(tenant, user), conversation_id

    # -- small stores ----------------------------------------------------------------

    def context(self, user: UserKey, conversation_id: str) -> str:
        """Cached chat-message window of a conversation."""
        return self._user(user, f"ctx:{escape(conversation_id)}")

    def presence(self, user: UserKey) -> str:
        """Sorted set of the user's live connections scored by expiry."""
        return self._user(user, "presence")

    def page_tools(self, user: UserKey) -> str:
        """Hash of the page tools each of the user's connections registered (JSON by id)."""
        return self._user(user, "pagetools")

    def page_tools_expiry(self, user: UserKey) -> str:
        """Sorted set of the connections in ``page_tools`` scored by expiry."""
        return self._user(user, "pagetools:exp")

    def rate(self, key_parts: str) -> str:
        """A rate counter; ``key_parts`` names what is limited, e.g. ``"msg:<tenant>:<user>"``."""
        return f"{self.prefix}rate:{escape(key_parts)}"

    def control_channel(self) -> str:
        """Global pub/sub channel for worker-to-worker control messages."""
        return f"{self.prefix}control"
