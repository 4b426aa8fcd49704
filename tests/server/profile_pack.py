"""A one-tool pack for the profile tests (``tests.server.profile_pack:pack``): a query that
reports what its ToolContext says about the conversation's profile."""

from __future__ import annotations

from server.tools.context import ToolContext
from server.tools.registry import ToolPack, ToolReturn

pack = ToolPack("profile_tests")


@pack.query()
async def profile_context(ctx: ToolContext) -> ToolReturn:
    """Tell which assistant profile this conversation runs under and what it searches."""
    knowledge = ",".join(ctx.knowledge) or "none"
    return ToolReturn(
        {"profile": ctx.profile, "knowledge": list(ctx.knowledge)},
        f"profile {ctx.profile}, knowledge {knowledge}",
    )
