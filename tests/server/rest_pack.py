"""A small tool pack for the REST, metrics and audit tests
(``PARLEY_TOOLS=tests.server.rest_pack:pack``): one query everyone may use, one only auditors
see, and one action with no side effects beyond its result."""

from __future__ import annotations

import logging

from server.tools.context import ToolContext
from server.tools.registry import ToolPack, ToolReturn

pack = ToolPack("rest_tests")
logger = logging.getLogger(__name__)


@pack.query()
async def count_letters(ctx: ToolContext, text: str) -> ToolReturn:
    """Count the letters of a text.

    Args:
        text: the text to count.
    """
    letters = sum(1 for char in text if char.isalpha())
    # The log tests look for this line and the turn context it carries.
    logger.info("counted %d letters", letters)
    return ToolReturn({"letters": letters}, f"{letters} letters")


@pack.query(roles=("auditor",))
async def audit_digest(ctx: ToolContext) -> dict[str, str]:
    """A digest of the tenant's books, for auditors only."""
    return {"tenant": ctx.tenant, "digest": "balanced"}


@pack.action(summary="Send the memo: {text}")
async def send_memo(ctx: ToolContext, text: str) -> dict[str, str]:
    """Send a memo to the user's team.

    Args:
        text: what the memo says.
    """
    return {"sent": text, "by": ctx.user}
