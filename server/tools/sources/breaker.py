"""A circuit breaker for one tool source: after enough failures in a row, stop calling it.

While the circuit is open, the source's tools are not offered to the model and calls to it
fail at once (nothing is sent, so an action's outcome is known: it did not run). After
``reset_s`` one trial call may go through (half-open); its success closes the circuit, its
failure opens it again for another ``reset_s``.

States and their transitions, the only ones there are::

    CLOSED    --failures reach the threshold-->  OPEN
    OPEN      --reset_s elapsed-->               HALF_OPEN
    HALF_OPEN --the trial call fails-->          OPEN
    HALF_OPEN --a call succeeds-->               CLOSED
    CLOSED    --a call succeeds-->               CLOSED (the count starts again)

No I/O here: the clock is a parameter, so the rules are tested by feeding it times.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    """Whether calls may go to the source."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts a source's failures in a row and says whether it may be called."""

    def __init__(
        self,
        failures: int,
        reset_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or reset_s <= 0:
            raise ValueError("a breaker needs failures >= 1 and reset_s > 0")
        self.threshold = failures
        self.reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open circuit turns half-open by itself once ``reset_s`` passed)."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self._opened_at >= self.reset_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def failures(self) -> int:
        """Failures in a row so far."""
        return self._failures

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open state only one trial at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._trial_running:
            return False
        self._trial_running = True
        return True

    def succeeded(self) -> None:
        """A call got an answer from the source (any answer that is not a server error)."""
        self._failures = 0
        self._opened_at = None
        self._trial_running = False

    def failed(self) -> None:
        """A call got no answer, or a server error."""
        self._failures += 1
        was_trial = self._trial_running
        self._trial_running = False
        if was_trial or self._failures >= self.threshold:
            self._opened_at = self._clock()

    def released(self) -> None:
        """A call ended without telling anything about the source (it was cancelled)."""
        self._trial_running = False
