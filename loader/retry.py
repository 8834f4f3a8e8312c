"""Backoff: the one retry policy of every caller that waits before trying again.

The callers keep their own numbers, because they wait on different things:

* serve's background workers and its lander, on a database that failed
  (:data:`loader.serve.workers.DATABASE_BACKOFF`): soon and often, never giving up;
* forwarding to Segment (:class:`loader.pipeline.segment.RetryPolicy`), and Drip's REST
  API (:data:`loader.drip_api.client.DRIP_BACKOFF`): a few tries, seconds apart;
* landing a chunk that met a deadlock (:data:`loader.pipeline.land.DEADLOCK_BACKOFF`):
  a few quick tries, spread at random so the two transactions do not meet again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_MAX_DOUBLINGS = 64
"""Past this many failures the wait is the cap anyway; keeps 2 ** n a float."""


@dataclass(frozen=True)
class Backoff:
    """Waits that double from ``first`` up to ``cap``, for at most ``attempts`` tries."""

    first: float
    """Seconds to wait after the first failure."""
    cap: float
    """Longest wait."""
    attempts: int | None = None
    """Tries in all, the first included, before giving up; None: never give up."""
    jitter: float = 0.0
    """Up to this multiple of the wait is added at random, so that callers that failed
    together do not all try again at the same moment."""

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row (1 or more)."""
        base = min(self.first * 2.0 ** min(failures - 1, _MAX_DOUBLINGS), self.cap)
        return base + random.uniform(0, base * self.jitter) if self.jitter else base

    def exhausted(self, failures: int) -> bool:
        """Whether ``failures`` failures in a row use up the tries."""
        return self.attempts is not None and failures >= self.attempts
