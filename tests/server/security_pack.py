"""A tool pack for the security tests (``PARLEY_TOOLS=tests.server.security_pack:pack``).

``employee_record`` hands back the kind of data a host app must never let reach the model
unredacted; ``send_note`` is an action with no database of its own, so confirmation and
action-rate tests need no seeded books.
"""

from __future__ import annotations

from typing import Any

from server.tools.context import ToolContext
from server.tools.registry import ToolPack, ToolReturn

pack = ToolPack("security_tests")

# Values the tests look for in what the model was sent: none of them may be there.
SECRET_SSN = "078-05-1120"
SECRET_PASSWORD = "hunter2-correct-horse"
SECRET_API_KEY = "ak_live_9f8e7d6c5b4a"
SECRET_CARD = "4111 1111 1111 1111"
SECRET_IBAN = "DE89370400440532013000"


@pack.query()
async def employee_record(ctx: ToolContext) -> ToolReturn:
    """The HR record of the employee on screen."""
    record: dict[str, Any] = {
        "name": "Ann Example",
        "tenant": ctx.tenant,
        "ssn": SECRET_SSN,
        "Password": SECRET_PASSWORD,
        "payroll": {"iban": SECRET_IBAN, "bank": "Example Bank", "apiKey": SECRET_API_KEY},
        "notes": f"company card {SECRET_CARD} kept on file",
    }
    return ToolReturn(record, "1 employee record")


@pack.action(summary="Send the note: {text}")
async def send_note(ctx: ToolContext, text: str) -> dict[str, str]:
    """Send a short note to the user's team.

    Args:
        text: what the note says.
    """
    return {"sent": text, "by": ctx.user}
