"""What REST handlers work with: the stores and parts the API uses, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass

from server.config import Settings
from server.knowledge.ingest import KnowledgeIngest
from server.knowledge.search_tool import KnowledgeSearch
from server.profiles.catalog import ProfileCatalog
from server.rest.webhooks import EscalationWebhook
from server.security.auth import TokenVerifier
from server.stream.hub import FrameHub
from server.tools.registry import ToolRegistry
from storage.activity import ActivityStore
from storage.escalations import EscalationStore
from storage.exports import ExportStore
from storage.feedback import FeedbackStore
from storage.history import HistoryStore
from storage.knowledge import KnowledgeStore
from storage.small_stores import WindowCounter
from storage.usage import UsageStore


@dataclass(frozen=True, slots=True)
class RestResources:
    """Assembled once per worker by the app's lifespan; kept at ``app.state.rest``."""

    settings: Settings
    verifier: TokenVerifier
    hub: FrameHub
    tools: ToolRegistry | None
    profiles: ProfileCatalog
    model_name: str
    feedback: FeedbackStore
    exports: ExportStore
    history: HistoryStore
    activity: ActivityStore
    usage: UsageStore
    escalations: EscalationStore
    webhook: EscalationWebhook
    rate: WindowCounter
    knowledge: KnowledgeSearch
    knowledge_store: KnowledgeStore
    knowledge_ingest: KnowledgeIngest
