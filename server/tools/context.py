"""What a tool knows about its call: who asks, in which tenant, and how to reach the database."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

__all__ = ["TenantSettings", "ToolContext"]


@dataclass(frozen=True, slots=True)
class TenantSettings:
    """Presentation settings of one tenant: the currency its books are kept in and its locale."""

    currency: str = "USD"
    locale: str = "en-US"


@dataclass(frozen=True, slots=True)
class ToolContext:
    """The caller of a tool: tenant, user, roles, the turn it belongs to, and a session factory.

    Tools must scope every read and write by `tenant`; the registry has already checked `roles`
    against the tool's roles, but a tool may look at them again for finer rules (for example an
    approval limit that depends on the approver's role).

    A call to a host app's tool also needs the model's ``call_id``, for an approved action the
    ``confirmation`` token (sent as its ``Idempotency-Key``), and, for a source whose
    ``auth = "passthrough"``, the ``user_token`` the user authenticated with.

    ``profile`` is the id of the conversation's assistant profile and ``knowledge`` the
    knowledge collections that profile searches (empty when it names none, and for an action
    run after its approval, which no longer belongs to a turn).
    """

    tenant: str
    user: str
    roles: frozenset[str]
    conversation_id: str
    turn_id: str
    currency: str
    locale: str
    sessions: Callable[[], AbstractAsyncContextManager[AsyncSession]]
    call_id: str = ""
    confirmation: str | None = None
    user_token: str | None = field(default=None, repr=False)
    profile: str | None = None
    knowledge: tuple[str, ...] = ()

    def db(self) -> AbstractAsyncContextManager[AsyncSession]:
        """Open a new database session: `async with ctx.db() as session: ...`."""
        return self.sessions()
