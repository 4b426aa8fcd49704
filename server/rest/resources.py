"""What REST handlers work with: the worker's services plus the stores only the API uses."""

from __future__ import annotations

from dataclasses import dataclass

from server.rest.webhooks import EscalationWebhook
from server.security.auth import TokenVerifier
from server.services import Services
from storage.activity import ActivityStore
from storage.escalations import EscalationStore
from storage.history import HistoryStore
from storage.small_stores import WindowCounter
from storage.usage import UsageStore


@dataclass(slots=True)
class RestResources:
    """Built once per worker by the app's lifespan; kept at ``app.state.rest``."""

    services: Services
    verifier: TokenVerifier
    history: HistoryStore
    activity: ActivityStore
    usage: UsageStore
    escalations: EscalationStore
    webhook: EscalationWebhook
    rate: WindowCounter

    @classmethod
    def build(
        cls, services: Services, verifier: TokenVerifier, webhook: EscalationWebhook
    ) -> RestResources:
        db = services.db
        return cls(
            services=services,
            verifier=verifier,
            history=HistoryStore(db),
            activity=ActivityStore(db),
            usage=UsageStore(db),
            escalations=webhook.store,
            webhook=webhook,
            rate=WindowCounter(services.redis, prefix=services.settings.redis_prefix),
        )
