"""No byte leaves the machine: a whole job runs in a network namespace with no route out.

``unshare -n`` gives the process a fresh network namespace holding only a
loopback interface that is down: nothing, not even 127.0.0.1, is reachable.
The embedded mode (SQLite, in-process execution, the bundled model) must
complete a job there. A second check in this process records every socket
connection attempted while a job runs, so a library that *tries* and quietly
falls back would still be caught.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import pdfgen
from tests.integration.harness import SIEVE

pytestmark = [pytest.mark.model, pytest.mark.slow]


def _can_unshare() -> bool:
    return shutil.which("unshare") is not None and os.geteuid() == 0


@pytest.fixture
def small_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "memo.pdf", pdfgen.MEMO_PAGES[:1], title="Memo")
    (folder / "note.txt").write_text("Meeting moved to Thursday at 10am in room 4.\n")
    (folder / "empty.pdf").write_bytes(b"")
    return folder


def _offline_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIEVE_")}
    env.update(
        {
            "SIEVE_DATA_DIR": str(tmp_path / "data"),
            "SIEVE_MODEL__N_CTX": "2048",
            "SIEVE_MODEL__MAX_TEXT_CHARS": "100",
            "SIEVE_MODEL__MAX_OUTPUT_TOKENS": "200",
            "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        }
    )
    return env


@pytest.mark.skipif(not _can_unshare(), reason="unshare -n needs root and util-linux")
def test_the_namespace_really_has_no_network() -> None:
    probe = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            "-c",
            "import socket; socket.create_connection(('127.0.0.1', 5432), timeout=3)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode != 0
    assert "unreachable" in probe.stderr or "refused" in probe.stderr


@pytest.mark.skipif(not _can_unshare(), reason="unshare -n needs root and util-linux")
def test_a_whole_job_completes_with_the_network_denied(small_folder: Path, tmp_path: Path) -> None:
    completed = subprocess.run(
        [
            "unshare",
            "-n",
            SIEVE,
            "run",
            str(small_folder),
            "--task",
            "summarize",
            "--format",
            "jsonl",
        ],
        env=_offline_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    rows = {Path(row["path"]).name: row for row in map(json.loads, completed.stdout.splitlines())}
    assert completed.returncode == 1, completed.stderr  # the empty file fails, as it should
    assert rows["memo.pdf"]["state"] == "done"
    assert rows["note.txt"]["state"] == "done"
    assert rows["empty.pdf"]["error_code"] == "empty_file"
    assert isinstance(rows["memo.pdf"]["result"]["summary"], str)


def test_no_connection_is_attempted_while_a_job_runs(small_folder: Path, tmp_path: Path) -> None:
    """Run the job in-process with an audit hook that sees every socket connect."""
    from click.testing import CliRunner

    from jobs.cli import cli
    from jobs.settings import reset_settings_cache

    attempts: list[Any] = []

    def record(event: str, args: tuple[Any, ...]) -> None:
        if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto"):
            attempts.append((event, args[1:]))

    sys.addaudithook(record)
    env = _offline_env(tmp_path)
    env["SIEVE_LIMITS__SANDBOX"] = "false"  # keep extraction in this process, under the hook
    try:
        result = CliRunner().invoke(
            cli,
            ["run", str(small_folder), "--task", "summarize", "--format", "jsonl"],
            env=env,
        )
    finally:
        reset_settings_cache()
    assert result.exit_code == 1, result.output
    assert attempts == [], f"connections attempted during a job: {attempts}"
