"""Lease holders: a dead process on this host frees its item at once; others wait for expiry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from worker import leases


def _exited_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_identity_names_role_host_and_pid() -> None:
    assert leases.process_identity("worker") == f"worker@{socket.gethostname()}:{os.getpid()}"


def test_a_process_on_this_host_that_exited_is_dead() -> None:
    assert leases.owner_is_dead(f"worker@{socket.gethostname()}:{_exited_pid()}") is True


def test_a_live_process_and_this_process_are_not_dead() -> None:
    assert leases.owner_is_dead(f"worker@{socket.gethostname()}:{os.getppid()}") is False
    assert leases.owner_is_dead(leases.process_identity("worker")) is False


def test_a_zombie_holds_no_lease() -> None:
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        # Not reaped yet: the process exists only as a zombie once it has exited.
        stat = Path(f"/proc/{zombie.pid}/stat")
        while stat.read_text().rpartition(")")[2].split()[0] != "Z":
            pass
        assert leases.owner_is_dead(f"worker@{socket.gethostname()}:{zombie.pid}") is True
    finally:
        zombie.wait()


def test_other_hosts_and_unparseable_owners_are_left_to_the_expiry_time() -> None:
    assert leases.owner_is_dead(f"worker@not-{socket.gethostname()}:{_exited_pid()}") is False
    for owner in (None, "", "thief", "thief@host", f"x@{socket.gethostname()}:abc"):
        assert leases.owner_is_dead(owner) is False


def test_a_lane_of_an_exited_process_is_dead_and_a_lane_of_this_one_is_not() -> None:
    host = socket.gethostname()
    assert leases.owner_is_dead(leases.lane_identity(f"worker@{host}:{_exited_pid()}", 3))
    this_lane = leases.lane_identity(leases.process_identity("worker"), 2)
    assert this_lane.endswith("/2")
    assert leases.owner_is_dead(this_lane) is False
