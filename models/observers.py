"""What happened, told to whoever listens: the hook between the layers that act and the
metrics that count (api/metrics.py), so that models/ and the faces import no metrics
library. By default nobody listens and every hook is a no-op call.
"""

from __future__ import annotations

# The outcome of a request a face turned away before any service saw it.
REFUSED = "Refused"


class Observer:
    """Every hook, each doing nothing; a listener overrides them. Names of outcomes are
    their classes' names (`Recorded`, `ClickNotFound`), or REFUSED (rate limit, query
    length, body type)."""

    def fire_answered(self, outcome: str) -> None:
        """A pixel fire (GET or POST; a HEAD stores nothing and is not told)."""

    def visit_answered(self, outcome: str) -> None:
        """A tracking-link visit."""

    def batch_committed(self, size: int, seconds: float) -> None:
        """A group commit's batch (models/store/group_commit.py), however it ended."""

    def postback_attempted(self, result: str) -> None:
        """A postback send and its verdict: `delivered`, `pending` (retried) or `failed`."""

    def subscriptions_changed(self, delta: int) -> None:
        """A GraphQL subscription opened (+1) or closed (-1)."""


_listening = Observer()


def observer() -> Observer:
    """The listener in place: call its hooks, never keep it (the app may replace it)."""
    return _listening


def listen(listener: Observer) -> None:
    """Put `listener` in place of the previous one (api/app.py, as the app is made)."""
    global _listening
    _listening = listener
