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
# A name that signed in from an address within this long is known there: the
# per-address limit does not hold it back, so a guesser behind an office's NAT cannot
# lock the office's people out. Its own per-(name, address) and per-name limits still hold.
KNOWN_FOR_S = 30 * 24 * 3600.0
MAX_KEYS = 100_000

# (user, address); None stands for any user or any address. Not a string such as
# "*": a name typed into the form could then land in another bucket.
Key = tuple[str | None, str | None]


class LoginThrottle:
    """At most ``attempts`` failures per (user, address), ``ANY_ADDRESS_FACTOR`` times that
    per user from all addresses together, and ``ANY_USER_FACTOR`` times that per address for
    all users together (names known at the address aside), in any ``window_s`` seconds."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[Key, deque[float]] = {}
        self._known: dict[tuple[str, str], float] = {}  # (user, address) -> last sign-in
        self._lock = threading.Lock()

    def _buckets(self, user: str, address: str) -> tuple[tuple[Key, int], ...]:
        """The buckets a sign-in of ``user`` from ``address`` counts in, with their allowances."""
        user = user[:64]
        buckets: tuple[tuple[Key, int], ...] = (
            ((user, address), self.attempts),
            ((user, None), self.attempts * ANY_ADDRESS_FACTOR),
        )
        signed_in = self._known.get((user, address))
        if signed_in is None or time.monotonic() - signed_in >= KNOWN_FOR_S:
            buckets += (((None, address), self.attempts * ANY_USER_FACTOR),)
        return buckets

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
            self._remember(user, address, time.monotonic())

    def _remember(self, user: str, address: str, when: float) -> None:
        if len(self._known) > MAX_KEYS:
            self._known = {k: t for k, t in self._known.items() if when - t < KNOWN_FOR_S}
        self._known[(user[:64], address)] = when

    def replay(self, sign_ins: Iterable[tuple[float, str, str, bool]]) -> None:
        """Sign-ins that happened before this process, oldest first:
        (seconds ago, user, address, succeeded)."""
        now = time.monotonic()
        with self._lock:
            for seconds_ago, user, address, succeeded in sign_ins:
                if succeeded and seconds_ago < KNOWN_FOR_S:
                    self._remember(user, address, now - seconds_ago)
                if seconds_ago >= self.window_s:
                    continue
                if succeeded:
                    self._failures.pop((user[:64], address), None)
                    continue
                for key, _allowed in self._buckets(user, address):
                    self._failures.setdefault(key, deque()).append(now - seconds_ago)
