"""The mutable state of one dev model app: its settings, fault rules and request log.

Tests reach it in-process as ``app.state.devllm``, or over HTTP through ``/_dev/faults`` and
``/_dev/requests``. A lock guards it because a test may drive an app served by uvicorn in another
thread while it changes the faults from its own.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from server.devllm.faults import FaultPlan, FaultRule, plan_faults
from server.devllm.script import Script

DEFAULT_REQUEST_LOG_SIZE = 100


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One received chat completions request, as ``GET /_dev/requests`` shows it."""

    received_at: float
    key: str | None
    body: Any

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON: when, which key (its label only), and the body."""
        return {"received_at": self.received_at, "key": self.key, "body": self.body}


def key_label(api_key: str | None) -> str | None:
    """A label for an API key that never reveals it: its last four characters at most."""
    if api_key is None:
        return None
    return "…" + api_key[-4:] if len(api_key) > 4 else "…"


class DevModelState:
    """Settings, faults and the bounded log of requests of one dev model app."""

    def __init__(
        self,
        script: Script,
        *,
        token_rate: float,
        first_token_delay_s: float,
        request_log_size: int = DEFAULT_REQUEST_LOG_SIZE,
    ) -> None:
        if token_rate < 0 or first_token_delay_s < 0:
            raise ValueError("token_rate and first_token_delay_s must be >= 0")
        self.script = script
        self.token_rate = token_rate
        self.first_token_delay_s = first_token_delay_s
        self._lock = threading.Lock()
        self._faults: list[FaultRule] = []
        self._requests: deque[LoggedRequest] = deque(maxlen=request_log_size)

    # -- faults ------------------------------------------------------------------------------

    def set_faults(self, rules: Iterable[FaultRule]) -> None:
        """Replace the fault rules."""
        with self._lock:
            self._faults = list(rules)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.set_faults(())

    def faults(self) -> list[FaultRule]:
        """The current fault rules (with their remaining ``times``)."""
        with self._lock:
            return list(self._faults)

    def plan(self, inline: Iterable[FaultRule], api_key: str | None) -> FaultPlan:
        """Decide the faults for one request: its inline markers first, then the rules."""
        with self._lock:
            return plan_faults([*inline, *self._faults], api_key)

    # -- request log -------------------------------------------------------------------------

    def record(self, api_key: str | None, body: Any) -> None:
        """Remember a received request; the oldest drop out past the log's size."""
        entry = LoggedRequest(received_at=time.time(), key=key_label(api_key), body=body)
        with self._lock:
            self._requests.append(entry)

    def requests(self) -> list[LoggedRequest]:
        """The remembered requests, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget every remembered request."""
        with self._lock:
            self._requests.clear()
