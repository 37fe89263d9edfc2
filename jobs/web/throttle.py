"""Sign-in throttling: a few failures per (user, address), then a pause.

Kept in the server's memory (``sieve serve`` is one process) and replayed at
start-up from the sign-in events of the last window in the audit chain, so a
restart does not hand an attacker a fresh allowance. Every failure is an
audit event, which is also what an investigation reads.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable

# A name tried from many addresses (a spray, or addresses that lie) is held too,
# at this many times the per-address allowance.
ANY_ADDRESS_FACTOR = 4
ANY_ADDRESS = "*"
MAX_KEYS = 100_000


class LoginThrottle:
    """At most ``attempts`` failures per (user, address), and ``ANY_ADDRESS_FACTOR`` times
    that per user from all addresses together, in any ``window_s`` seconds."""

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
        user = user[:64]
        with self._lock:
            waits = [0.0]
            for key, allowed in (
                ((user, address), self.attempts),
                ((user, ANY_ADDRESS), self.attempts * ANY_ADDRESS_FACTOR),
            ):
                failures = self._recent(key, now)
                if len(failures) >= allowed:
                    waits.append(failures[-allowed] + self.window_s - now)
            return max(waits)

    def failed(self, user: str, address: str) -> None:
        with self._lock:
            now = time.monotonic()
            if len(self._failures) > MAX_KEYS:
                self._failures = {
                    k: v for k, v in self._failures.items() if v and v[-1] > now - self.window_s
                }
            for key in ((user[:64], address), (user[:64], ANY_ADDRESS)):
                self._recent(key, now).append(now)

    def succeeded(self, user: str, address: str) -> None:
        with self._lock:
            self._failures.pop((user[:64], address), None)

    def replay(self, sign_ins: Iterable[tuple[float, str, str, bool]]) -> None:
        """Sign-ins that happened before this process, oldest first:
        (seconds ago, user, address, succeeded)."""
        now = time.monotonic()
        with self._lock:
            for seconds_ago, user, address, succeeded in sign_ins:
                if seconds_ago >= self.window_s:
                    continue
                if succeeded:
                    self._failures.pop((user[:64], address), None)
                    continue
                for key in ((user[:64], address), (user[:64], ANY_ADDRESS)):
                    self._failures.setdefault(key, deque()).append(now - seconds_ago)
