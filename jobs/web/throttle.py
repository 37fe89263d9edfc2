"""Sign-in throttling: a few failures per (user, address), then a pause.

Kept in the server's memory: ``sieve serve`` is one process, and a restart
forgetting the count costs an attacker a restart per window. Every failure is
also an audit event, which is what an investigation reads.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class LoginThrottle:
    """At most ``attempts`` failures per key in any ``window_s`` seconds."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, user: str, address: str) -> float:
        """Seconds until this user may try again from this address (0: now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent((user, address), now)
            if len(failures) < self.attempts:
                return 0.0
            return max(0.0, failures[0] + self.window_s - now)

    def failed(self, user: str, address: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent((user, address), now).append(now)

    def succeeded(self, user: str, address: str) -> None:
        with self._lock:
            self._failures.pop((user, address), None)
