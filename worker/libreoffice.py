"""LibreOffice headless as a converter: legacy and OpenDocument files to PDF.

LibreOffice (MPL-2.0) runs as a separate process, one conversion at a time,
each with a throwaway user profile (``-env:UserInstallation=file://…``, one
argv element) so no two conversions share state and nothing persists; with
``--headless --norestore --nolockcheck --nodefault`` it shows no UI, restores
no crashed session and takes no lock on the input. A conversion gets a time
limit scaled by the file's size; past it the whole process group (soffice
forks ``soffice.bin``) is killed and the item fails as ``timeout``, which is
the file's fault, not a retryable one: a document that hangs the converter
hangs it every time. Macros never run: headless conversion does not execute
document macros and the fresh profile trusts no location.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from worker import errors, tools
from worker.config import LimitSettings, MediaSettings

_STDERR_CHARS = 2000


def conversion_timeout_s(size_bytes: int, limits: LimitSettings) -> float:
    """How long one conversion may take: a base plus so much per MiB of input."""
    return limits.convert_base_s + limits.convert_per_mib_s * size_bytes / (1024 * 1024)


def convert_to_pdf(
    source: Path, out_dir: Path, limits: LimitSettings, media: MediaSettings, *, extension: str
) -> Path:
    """Convert ``source`` to a PDF under ``out_dir``; return its path.

    ``extension`` (".doc", ".xls"…) is given to the copy LibreOffice opens:
    the content store names files by hash, and LibreOffice picks its import
    filter partly by the name. Raises :class:`~worker.errors.ExtractionTimeoutError`
    past the time limit and :class:`~worker.errors.CorruptFileError` when
    LibreOffice produces nothing.
    """
    target = out_dir / "converted.pdf"
    if target.is_file() and target.stat().st_size > 0:
        # The artifacts directory is the content's (by hash), and the PDF is
        # moved in whole: the same bytes are converted once.
        return target
    soffice = tools.find_tool(media.soffice_path, "soffice", package="libreoffice-core-nogui")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sieve-lo-") as scratch:
        scratch_dir = Path(scratch)
        named = scratch_dir / f"document{extension}"
        os.symlink(source.resolve(), named)
        profile = scratch_dir / "profile"
        args = [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--nodefault",
            "--nologo",
            "--convert-to",
            "pdf",
            "--outdir",
            str(scratch_dir / "out"),
            str(named),
        ]
        timeout_s = conversion_timeout_s(source.stat().st_size, limits)
        stderr = _run_in_own_group(args, timeout_s, scratch_dir)
        produced = scratch_dir / "out" / "document.pdf"
        if not produced.is_file() or produced.stat().st_size == 0:
            raise errors.CorruptFileError(
                f"LibreOffice could not convert the file: {stderr.strip()[-300:] or 'no output'}"
            )
        os.replace(produced, target)
        return target


def _run_in_own_group(args: list[str], timeout_s: float, home: Path) -> str:
    """Run the converter in a new session; kill the whole group past ``timeout_s``."""
    environment = {
        "LC_ALL": "C",
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SAL_USE_VCLPLUGIN": "svp",
        "TMPDIR": str(home),
    }
    started = time.monotonic()
    with subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=environment,
        start_new_session=True,
    ) as child:  # closes the pipe however this ends
        try:
            _, stderr = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            _kill_group(child)
            raise errors.ExtractionTimeoutError(
                f"LibreOffice did not finish converting within {timeout_s:.1f} s "
                f"(killed after {time.monotonic() - started:.1f} s)"
            ) from exc
        finally:
            _kill_group(child)  # a helper it forked may outlive it
    return stderr.decode("utf-8", "replace")[-_STDERR_CHARS:]


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if child.returncode is None:
        child.wait()
