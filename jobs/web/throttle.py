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
# So is one address trying many names (guessing accounts, or one password against
# each): more, since many people may sign in from behind one address (a NAT, a proxy).
ANY_USER_FACTOR = 10
MAX_KEYS = 100_000

# (user, address); None stands for any user or any address. Not a string such as
# "*": a name typed into the form could then land in another bucket.
Key = tuple[str | None, str | None]


class LoginThrottle:
    """At most ``attempts`` failures per (user, address), ``ANY_ADDRESS_FACTOR`` times that
    per user from all addresses together, and ``ANY_USER_FACTOR`` times that per address for
    all users together, in any ``window_s`` seconds."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[Key, deque[float]] = {}
        self._lock = threading.Lock()

    def _buckets(self, user: str, address: str) -> tuple[tuple[Key, int], ...]:
        """The buckets a sign-in of ``user`` from ``address`` counts in, with their allowances."""
        user = user[:64]
        return (
            ((user, address), self.attempts),
            ((user, None), self.attempts * ANY_ADDRESS_FACTOR),
            ((None, address), self.attempts * ANY_USER_FACTOR),
        )

    def _recent(self, key: Key, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        return failures

    def retry_after(self, user: str, address: str) -> float:
        """Seconds until this user may try again from this address (0: now)."""
        now = time.monotonic()
        with self._lock:
            waits = [0.0]
            for key, allowed in self._buckets(user, address):
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
            for key, _allowed in self._buckets(user, address):
                self._recent(key, now).append(now)

    def succeeded(self, user: str, address: str) -> None:
        """Forget this (user, address)'s failures. The per-user and per-address counts stay:
        one account an attacker holds must not buy a fresh allowance for guessing others."""
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
                for key, _allowed in self._buckets(user, address):
                    self._failures.setdefault(key, deque()).append(now - seconds_ago)
