"""Who holds an item, and whether that holder is still alive.

A lease owner is recorded as ``role@host:pid``, or ``role@host:pid/lane`` where
one process works on several items at once (parallel sequences: a thread, a
lane, per item; each lane holds its own leases). When the holder is a process
on this very host and that process no longer exists (a worker child killed by
the OOM killer or SIGKILL), its lease is dead now, not when it expires: the
item can be taken over at once instead of after ``worker.lease_s``
(which the holder's heartbeat keeps renewing while it is alive). For an
owner on another host only the expiry time counts.
"""

from __future__ import annotations

import os
import socket


def process_identity(role: str, host_name: str | None = None) -> str:
    """``role@host:pid`` for this process: recorded on leases, results and audit events."""
    return f"{role}@{host_name or socket.gethostname()}:{os.getpid()}"


def lane_identity(process: str, lane: int) -> str:
    """The identity of one of a process's concurrent lanes: ``role@host:pid/lane``.

    Each lane needs its own: a lease held by this very identity counts as the
    caller's own attempt resuming, so two lanes sharing one could both work on
    a redelivered item.
    """
    return f"{process}/{lane}"


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` names a process on this host that has exited.

    False for owners on other hosts and for anything that does not parse: when
    in doubt, the lease's expiry time decides.
    """
    if not owner or "@" not in owner or ":" not in owner:
        return False
    host, _, pid_text = owner.partition("@")[2].partition("/")[0].rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    return not _process_exists(pid)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    # A zombie still "exists" until reaped; its lease is as dead as its work.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True
