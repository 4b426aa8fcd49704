"""The help-desk webhook: every escalation POSTed, signed, to a configured URL.

Delivery is at least once. The escalation row is the outbox (see ``storage.escalations``):
whichever worker escalates wakes its own delivery loop at once, and every worker's loop also
looks for due deliveries now and then, so a retry survives the worker that scheduled it. A
failed attempt (a connection error, a timeout, any status outside 2xx) is retried with
exponential backoff until ``webhook_max_attempts``; every attempt is recorded in
``webhook_delivery``.

The body is the same JSON on every attempt; receivers drop repeats by ``escalation_id``. It is
signed like GitHub's webhooks: ``X-Parley-Signature: sha256=<hex HMAC-SHA256 of the raw body
keyed with PARLEY_ESCALATION_WEBHOOK_SECRET>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import time
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
import orjson

from server.config import Settings
from server.ops import metrics
from storage.escalations import DeliveryResult, EscalationStore
from storage.models import Escalation, utcnow

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Parley-Signature"
EVENT_HEADER = "X-Parley-Event"
DELIVERY_HEADER = "X-Parley-Delivery"
ATTEMPT_HEADER = "X-Parley-Attempt"
EVENT = "conversation.escalated"
CLAIM_MARGIN_S = 30.0  # a claimed delivery is held this much longer than an attempt may take


def sign(secret: str, body: bytes) -> str:
    """The signature header value of ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def backoff_s(attempt: int, base_s: float, max_s: float) -> float:
    """Delay after failed attempt number ``attempt`` (1-based): doubling from ``base_s``,
    capped at ``max_s``, with the upper half jittered so many retries do not arrive at once."""
    ceiling = min(max_s, base_s * 2.0 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def origin(url: str) -> str:
    """Scheme, host and port of ``url``: what is recorded of it (paths and queries of help-desk
    webhook URLs often hold credentials)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class EscalationWebhook:
    """Delivers escalations to the configured URL; does nothing when none is configured."""

    def __init__(self, settings: Settings, store: EscalationStore) -> None:
        self.store = store
        self._settings = settings
        self._url = settings.escalation_webhook_url
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopping = False
        self._next_retry: float | None = None  # monotonic time of the soonest retry we set

    @property
    def configured(self) -> bool:
        return bool(self._url)

    def start(self) -> None:
        if not self.configured:
            return
        if not self._settings.escalation_webhook_secret:
            logger.warning(
                "escalation webhook has no secret (PARLEY_ESCALATION_WEBHOOK_SECRET): "
                "deliveries are sent unsigned"
            )
        self._client = httpx.AsyncClient(
            timeout=self._settings.webhook_timeout_s, follow_redirects=False
        )
        self._task = asyncio.create_task(self._run_forever(), name="escalation webhook")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, self._settings.webhook_timeout_s + 1)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._client is not None:
            await self._client.aclose()

    def kick(self) -> None:
        """Look for due deliveries now (a new escalation was just stored)."""
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------

    async def _run_forever(self) -> None:
        while not self._stopping:
            # Clear before looking: a kick that arrives while we look is then not lost.
            self._wake.clear()
            try:
                claimed = await self.store.claim_due(
                    hold_s=self._settings.webhook_timeout_s + CLAIM_MARGIN_S
                )
                for escalation in claimed:
                    if self._stopping:
                        break
                    await self._deliver(escalation)
                if claimed:
                    continue  # there may be more due
            except Exception:
                logger.exception("escalation webhook: looking for due deliveries failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._wait_s())

    def _wait_s(self) -> float:
        """Until the next poll, or the soonest retry this worker scheduled if that is sooner
        (later retries are found by the polls)."""
        wait = self._settings.webhook_poll_interval_s
        if self._next_retry is not None:
            until_retry = self._next_retry - time.monotonic()
            if until_retry <= 0:
                self._next_retry = None
                return 0.0
            wait = min(wait, until_retry)
        return wait

    async def _deliver(self, escalation: Escalation) -> None:
        assert self._client is not None
        assert self._url is not None
        attempt = escalation.webhook_attempts + 1
        body = orjson.dumps(escalation.payload)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "parley-webhook/1",
            EVENT_HEADER: EVENT,
            DELIVERY_HEADER: escalation.id,
            ATTEMPT_HEADER: str(attempt),
        }
        secret = self._settings.escalation_webhook_secret
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        started = time.monotonic()
        try:
            # Streamed and never read: the receiver's reply body is of no interest.
            async with self._client.stream("POST", self._url, content=body, headers=headers) as r:
                status: int | None = r.status_code
            ok = status is not None and 200 <= status < 300
            error = None if ok else f"HTTP {status}"
        except httpx.HTTPError as exc:
            status, ok, error = None, False, f"{type(exc).__name__}: {exc}"[:500]
        result = DeliveryResult(
            ok=ok,
            status_code=status,
            error=error,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        retry_at = None
        if not ok and attempt < self._settings.webhook_max_attempts:
            delay = backoff_s(
                attempt, self._settings.webhook_retry_base_s, self._settings.webhook_retry_max_s
            )
            retry_at = utcnow() + timedelta(seconds=delay)
            soonest = time.monotonic() + delay
            if self._next_retry is None or soonest < self._next_retry:
                self._next_retry = soonest
        await self.store.record_attempt(
            escalation, attempt=attempt, url=origin(self._url), result=result, retry_at=retry_at
        )
        outcome = "delivered" if ok else ("retry" if retry_at else "failed")
        metrics.WEBHOOK_DELIVERIES.labels(outcome).inc()
        log = logger.info if ok else logger.warning
        log(
            "escalation %s webhook attempt %d: %s",
            escalation.id,
            attempt,
            "delivered" if ok else f"{error}; {'will retry' if retry_at else 'giving up'}",
            extra={"tenant": escalation.tenant, "user": escalation.user_id},
        )
