"""External tools (ffmpeg, ffprobe, Tesseract), found and run one hardened way.

A submitted file reaches these tools as their input, so every run is held to
the same rules, written once here rather than once per tool:

- an argument list, never a shell, so no file name is ever parsed as syntax;
- stdin closed (``/dev/null``) unless the caller hands the tool its input;
- a minimal environment: no proxy variables and no Sieve secrets are
  inherited, only ``LC_ALL=C`` (stable messages) and what the caller adds;
- a wall-clock timeout that kills the tool and raises
  :class:`~worker.errors.ToolTimeoutError`, which is retryable: a loaded
  machine may well finish next time.

A tool that cannot be found is the installation's fault, not the file's, so
:func:`find_tool` raises :class:`~worker.errors.ConfigurationError`. What a
non-zero exit means depends on the tool (ffmpeg can blame the input), so
:func:`run_tool` only raises :class:`~worker.errors.ToolError` for one when
asked to.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from worker import errors

logger = logging.getLogger(__name__)

# All a tool inherits: C-locale messages, which error matching relies on.
_BASE_ENVIRONMENT: Mapping[str, str] = {"LC_ALL": "C"}


def find_tool(configured: str, tool: str, *, package: str | None = None) -> str:
    """The executable for ``configured`` (a name on PATH or a path to it).

    ``tool`` names it in messages and in the setting that overrides it
    (``SIEVE_MEDIA__<TOOL>_PATH``); ``package`` is what to install, when the
    tool's package has another name. Raises
    :class:`~worker.errors.ConfigurationError` when it cannot be found:
    retrying will not help.
    """
    resolved = shutil.which(configured)
    if resolved is None:
        setting = f"SIEVE_MEDIA__{tool.upper()}_PATH"
        raise errors.ConfigurationError(
            f"{tool} not found at {configured!r}; install {package or 'it'} or set {setting}"
        )
    return resolved


def run_tool(
    args: Sequence[str],
    *,
    tool: str,
    timeout_s: float,
    stdin: bytes | None = None,
    extra_environment: Mapping[str, str] | None = None,
    check: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (``args[0]`` from :func:`find_tool`) and return what it printed.

    ``stdin`` is fed to the tool, which otherwise reads ``/dev/null``;
    ``extra_environment`` is added to the minimal environment. Output is
    decoded as UTF-8, undecodable bytes replaced. Raises
    :class:`~worker.errors.ToolTimeoutError` (naming ``tool``) when it runs
    past ``timeout_s`` seconds, and, when ``check`` is true,
    :class:`~worker.errors.ToolError` with its last stderr line when it exits
    non-zero.
    """
    logger.debug("running %s", args)
    try:
        completed = subprocess.run(
            list(args),
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            env={**_BASE_ENVIRONMENT, **(extra_environment or {})},
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        # subprocess.run has already killed and reaped the tool.
        raise errors.ToolTimeoutError(f"{tool} did not finish within {timeout_s:g} s") from exc
    decoded = subprocess.CompletedProcess(
        completed.args,
        completed.returncode,
        stdout=completed.stdout.decode("utf-8", "replace"),
        stderr=completed.stderr.decode("utf-8", "replace"),
    )
    if check and decoded.returncode != 0:
        last_line = (decoded.stderr.strip().splitlines() or [""])[-1]
        raise errors.ToolError(f"{tool} failed (exit {decoded.returncode}): {last_line}")
    return decoded
