"""What this server is configured with, as far as the caller may know: the model, the tools
offered to the caller's roles, the limits. Never a secret, a key or an internal URL."""

from __future__ import annotations

from importlib import metadata

from pydantic import BaseModel, Field

from protocol import PROTOCOL_VERSION
from server.knowledge.citations import SEARCH_TOOL
from server.rest.api import ApiCall, ApiRouter

router = ApiRouter("status", "The server's configuration as the caller sees it.")


class ModelInfo(BaseModel):
    name: str
    dev: bool = Field(description="the built-in scripted development model is answering")
    context_tokens: int
    max_output_tokens: int


class ToolInfo(BaseModel):
    name: str
    description: str
    kind: str = Field(description="`query` runs at once; `action` waits for the user's approval")


class LimitsInfo(BaseModel):
    max_message_chars: int
    max_frame_bytes: int
    double_texting: str
    turn_queue_max: int
    turn_max_s: float
    tool_rounds_max: int
    confirmation_ttl_s: float
    user_messages_per_minute: int = Field(description="0 means no limit")
    max_connections_per_user: int
    budget_conversation_tokens: int
    budget_user_daily_tokens: int
    budget_user_daily_usd: float
    api_requests_per_minute: int = Field(description="0 means no limit")
    api_page_max: int


class CallerInfo(BaseModel):
    user: str
    tenant: str
    roles: list[str]


class StatusOut(BaseModel):
    """The server's configuration as the caller sees it."""

    version: str
    protocol: int
    model: ModelInfo
    tools: list[ToolInfo] = Field(description="tools the assistant may use for the caller")
    limits: LimitsInfo
    escalation_webhook: bool = Field(description="escalations are sent to a help desk")
    caller: CallerInfo


@router.get("/status", response=StatusOut)
async def server_status(call: ApiCall[None, None]) -> StatusOut:
    """The model, the tools offered to me and the limits this server applies."""
    rest = call.rest
    settings = rest.settings
    roles = call.principal.roles
    tools = rest.tools.visible_to(roles) if rest.tools is not None else []
    if not await rest.knowledge.available(call.principal.tenant, roles, ()):
        tools = [tool for tool in tools if tool.name != SEARCH_TOOL]
    return StatusOut(
        version=server_version(),
        protocol=PROTOCOL_VERSION,
        model=ModelInfo(
            name=rest.model_name,
            dev=settings.dev_model,
            context_tokens=settings.model_context_tokens,
            max_output_tokens=settings.model_max_output_tokens,
        ),
        tools=[ToolInfo(name=t.name, description=t.description, kind=t.kind) for t in tools],
        limits=LimitsInfo(
            max_message_chars=settings.max_message_chars,
            max_frame_bytes=settings.max_frame_bytes,
            double_texting=settings.double_texting,
            turn_queue_max=settings.turn_queue_max,
            turn_max_s=settings.turn_max_s,
            tool_rounds_max=settings.tool_rounds_max,
            confirmation_ttl_s=settings.confirmation_ttl_s,
            user_messages_per_minute=settings.user_messages_per_minute,
            max_connections_per_user=settings.max_connections_per_user,
            budget_conversation_tokens=settings.budget_conversation_tokens,
            budget_user_daily_tokens=settings.budget_user_daily_tokens,
            budget_user_daily_usd=settings.budget_user_daily_usd,
            api_requests_per_minute=settings.api_requests_per_minute,
            api_page_max=settings.api_page_max,
        ),
        escalation_webhook=call.rest.webhook.configured,
        caller=CallerInfo(
            user=call.principal.user, tenant=call.principal.tenant, roles=sorted(roles)
        ),
    )


def server_version() -> str:
    """Parley's version as installed, or "0.0.0+source" when run from a checkout that was never
    installed."""
    try:
        return metadata.version("parley")
    except metadata.PackageNotFoundError:
        return "0.0.0+source"
