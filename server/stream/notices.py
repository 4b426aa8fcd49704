"""``error`` frames about a user's turns, for that user's tabs on this worker.

Error frames are not part of the logged stream (DESIGN: they answer a request). A failure that
belongs to a turn is still shown to every tab here; tabs elsewhere learn the outcome from the
logged ``turn_end``.
"""

from __future__ import annotations

from server.errors import Failure
from server.stream.hub import FrameHub
from storage.keys import UserKey


class Notices:
    def __init__(self, hub: FrameHub) -> None:
        self._hub = hub

    def turn_failed(self, user: UserKey, failure: Failure, *, ref: str | None = None) -> None:
        """Show ``failure`` to the user's tabs on this worker, answering the request ``ref``."""
        frame = failure.error_frame(ref or None)
        for tab in self._hub.tabs_of(user):
            tab.send(frame)
