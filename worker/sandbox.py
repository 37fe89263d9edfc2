"""Run an extractor in a child process, so a hostile file costs one item, not the worker.

MuPDF, ffmpeg and image decoders have all had crashes, infinite loops and
unbounded allocations on crafted input. A worker process holds a loaded model
(gigabytes, a minute to load) and serves many items, so parsers never run in it.
Each extraction runs in a fresh interpreter (``python -m worker.sandbox``)
that sets its own resource limits before importing any parser:

* ``RLIMIT_AS``: address space, so a decompression bomb fails with MemoryError
  (recorded as ``oom``) instead of taking the machine down;
* ``RLIMIT_CPU``: CPU seconds, so a parser that spins is stopped (``timeout``);
* ``RLIMIT_FSIZE``: the largest file the child may write (rendered pages, frames);
* ``RLIMIT_CORE`` 0: no core dumps of confidential content on disk.

The parent adds a wall-clock timeout (a child blocked on I/O uses no CPU) and
kills the child's whole process group, so an ffmpeg or tesseract it started dies
with it. A fresh interpreter rather than a fork: a forked worker child would
inherit the model's mappings, which count against ``RLIMIT_AS``, and threads
that ``fork`` does not copy.

The request and the result travel as JSON files in a private temporary
directory; nothing about the file reaches a shell or a command line but paths.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worker import errors
from worker.config import LimitSettings, MediaSettings
from worker.extractors.base import Extraction
from worker.imaging.deid_profile import RegionRule

if TYPE_CHECKING:
    import numpy as np

    from worker.imaging.deid import PixelCleaning

logger = logging.getLogger(__name__)

# How often the parent wakes while waiting, to renew the item's lease.
_POLL_SECONDS = 5.0
# Grace between the CPU soft limit (SIGXCPU, catchable) and the hard one (SIGKILL).
_CPU_HARD_GRACE_SECONDS = 5
_STDERR_TAIL_BYTES = 4000
_MAX_OPEN_FILES = 256


def extract_isolated(
    media_type: str,
    source: Path,
    artifacts_dir: Path,
    limits: LimitSettings,
    media: MediaSettings,
    heartbeat: Callable[[], None] | None = None,
    plugins: Sequence[str] = (),
) -> Extraction:
    """Extract ``source`` with the best extractor for ``media_type``, in a bounded child.

    Raises the same :class:`worker.errors.SieveError` subclasses the extractor
    raises, plus :class:`~worker.errors.ExtractionTimeoutError`,
    :class:`~worker.errors.ExtractionOutOfMemoryError` and
    :class:`~worker.errors.ExtractionCrashedError` for a child that hit a limit
    or died. An unexpected exception inside the child comes back as
    :class:`~worker.errors.InternalError` carrying the child's traceback. ``heartbeat``
    is called every few seconds while the child runs (lease renewal); whatever
    it raises stops the child and propagates. ``plugins`` are modules that
    register extractors of their own; the child imports them too.
    """
    if not limits.sandbox:
        from worker.extractors import extractor_for, load_plugins

        load_plugins(plugins)
        return extractor_for(media_type).extract(source, artifacts_dir, limits, media)
    with tempfile.TemporaryDirectory(prefix="sieve-sandbox-") as scratch:
        scratch_dir = Path(scratch)
        request_path = scratch_dir / "request.json"
        result_path = scratch_dir / "result.json"
        request_path.write_text(
            json.dumps(
                {
                    "media_type": media_type,
                    "source": str(source),
                    "artifacts_dir": str(artifacts_dir),
                    "limits": limits.model_dump(mode="json"),
                    "media": media.model_dump(mode="json"),
                    "result_path": str(result_path),
                    "parent_pid": os.getpid(),
                    "plugins": list(plugins),
                }
            )
        )
        stderr_path = scratch_dir / "stderr.log"
        returncode, wall_seconds = _run_child(request_path, stderr_path, limits, heartbeat)
        payload = _outcome(returncode, wall_seconds, result_path, stderr_path, limits)
        return Extraction.from_dict(payload["extraction"])


def clean_pixels_isolated(
    source: Path,
    identifiers: dict[str, Any],
    limits: LimitSettings,
    media: MediaSettings,
    region_rules: Sequence[RegionRule] = (),
) -> tuple[list[np.ndarray], PixelCleaning]:
    """De-identification's pixel pass (:func:`worker.imaging.deid.cleaned_frames`) in a bounded child.

    The same decoders and OCR as extraction read the same untrusted pixel
    data, so they run under the same limits and fail the same way: a crash,
    a bomb or a spin costs this instance (an :class:`~worker.errors.InputError`),
    never the export. The cleaned frames come back as a NumPy file.
    """
    # Imported here: the child imports this module before it sets its limits.
    import numpy as np
    import pydicom

    from worker.imaging import deid

    if not limits.sandbox:
        header = pydicom.dcmread(source, stop_before_pixels=True)
        return deid.cleaned_frames(source, header, identifiers, media, region_rules)
    with tempfile.TemporaryDirectory(prefix="sieve-sandbox-") as scratch:
        scratch_dir = Path(scratch)
        request_path = scratch_dir / "request.json"
        result_path = scratch_dir / "result.json"
        frames_path = scratch_dir / "frames.npy"
        request_path.write_text(
            json.dumps(
                {
                    "operation": "clean_pixels",
                    "source": str(source),
                    "identifiers": identifiers,
                    "region_rules": [rule.model_dump(mode="json") for rule in region_rules],
                    "frames_path": str(frames_path),
                    "limits": limits.model_dump(mode="json"),
                    "media": media.model_dump(mode="json"),
                    "result_path": str(result_path),
                    "parent_pid": os.getpid(),
                },
                default=str,
            )
        )
        stderr_path = scratch_dir / "stderr.log"
        returncode, wall_seconds = _run_child(request_path, stderr_path, limits, None)
        payload = _outcome(returncode, wall_seconds, result_path, stderr_path, limits)
        stacked = np.load(frames_path, allow_pickle=False)
        return list(stacked), deid.PixelCleaning(**payload["cleaning"])


def _run_child(
    request_path: Path,
    stderr_path: Path,
    limits: LimitSettings,
    heartbeat: Callable[[], None] | None,
) -> tuple[int | None, float]:
    """Start the child and wait for it; None as the return code means we killed it."""
    started = time.monotonic()
    with stderr_path.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "worker.sandbox", str(request_path)],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,  # its own process group, killed as one
            env=_child_environment(),
            close_fds=True,
        )
        try:
            while True:
                remaining = limits.extract_wall_s - (time.monotonic() - started)
                if remaining <= 0:
                    _kill_group(child)
                    return None, time.monotonic() - started
                try:
                    returncode = child.wait(timeout=min(_POLL_SECONDS, remaining))
                    return returncode, time.monotonic() - started
                except subprocess.TimeoutExpired:
                    if heartbeat is not None:
                        heartbeat()
        except BaseException:
            # A time limit, a lost lease, Ctrl-C: never leave a parser running.
            _kill_group(child)
            raise


def _child_environment() -> dict[str, str]:
    """The parent's environment, minus anything that could make a library go online."""
    environment = dict(os.environ)
    environment.update(
        {
            "HF_HUB_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return environment


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


def _outcome(
    returncode: int | None,
    wall_seconds: float,
    result_path: Path,
    stderr_path: Path,
    limits: LimitSettings,
) -> dict[str, Any]:
    """How the child ended: its result payload, or the right Sieve error raised."""
    if returncode is None:
        raise errors.ExtractionTimeoutError(
            f"reading the file took longer than the {limits.extract_wall_s:g} s "
            "wall-clock limit for extraction; the parser was stopped"
        )
    if result_path.is_file():
        return _read_result(json.loads(result_path.read_text()), limits)
    stderr_tail = _tail(stderr_path)
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL) and _looks_like_cpu_limit(
        limits, wall_seconds
    ):
        raise errors.ExtractionTimeoutError(
            f"reading the file used more than the {limits.extract_cpu_s} s CPU-time limit "
            "for extraction; the parser was stopped"
        )
    if _looks_like_out_of_memory(stderr_tail):
        raise errors.ExtractionOutOfMemoryError(_memory_message(limits))
    if returncode < 0:
        name = signal.Signals(-returncode).name
        raise errors.ExtractionCrashedError(
            f"the parser crashed on this file (killed by {name}); the worker is unharmed"
        )
    raise errors.ExtractionCrashedError(
        f"the parser exited with status {returncode} without a result: {stderr_tail[-300:]}"
    )


def _looks_like_cpu_limit(limits: LimitSettings, wall_seconds: float) -> bool:
    # CPU time can run ahead of wall time with threads, never far behind it:
    # a SIGKILL long before the CPU budget could be spent came from elsewhere.
    threads_upper_bound = max(os.cpu_count() or 1, 1)
    return wall_seconds * threads_upper_bound >= limits.extract_cpu_s * 0.9


def _looks_like_out_of_memory(stderr_tail: str) -> bool:
    markers = ("MemoryError", "bad_alloc", "out of memory", "Cannot allocate memory")
    return any(marker in stderr_tail for marker in markers)


def _memory_message(limits: LimitSettings) -> str:
    return (
        f"reading the file needed more than the {limits.extract_memory_mb} MB memory "
        "limit for extraction (a decompression bomb, or a file too large for the limit)"
    )


def _tail(path: Path) -> str:
    with path.open("rb") as stream:
        stream.seek(0, os.SEEK_END)
        stream.seek(max(0, stream.tell() - _STDERR_TAIL_BYTES))
        return stream.read().decode("utf-8", errors="replace")


def _read_result(payload: dict[str, Any], limits: LimitSettings) -> dict[str, Any]:
    if "error" not in payload and "internal" not in payload:
        return payload
    if "internal" in payload:
        raise errors.InternalError(
            "internal error in the extractor (see the traceback)", detail=payload["internal"]
        )
    code, message = payload["error"]["code"], payload["error"]["message"]
    if code == errors.ExtractionOutOfMemoryError.code:
        message = _memory_message(limits)
    raise errors.error_class_for(code)(message)


# --- the child ----------------------------------------------------------------


def _apply_limits(limits: dict[str, Any]) -> None:
    memory_bytes = int(limits["extract_memory_mb"]) * 1024 * 1024
    cpu_seconds = int(limits["extract_cpu_s"])
    output_bytes = int(limits["extract_max_output_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + _CPU_HARD_GRACE_SECONDS))
    resource.setrlimit(resource.RLIMIT_FSIZE, (output_bytes, output_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soft_files, hard_files = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft_files, _MAX_OPEN_FILES), hard_files))


def _die_with_parent(parent_pid: int | None) -> None:
    """End this child when the worker that started it dies (Linux ``PR_SET_PDEATHSIG``).

    A worker killed mid-extraction must not leave an orphan writing into the
    item's artifacts while the next attempt resumes from them.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before the signal was armed


def _write_result(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a child killed mid-write leaves no half result behind."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(payload))
    partial.rename(path)


def _child_main(request_path: Path) -> int:
    request = json.loads(request_path.read_text())
    _die_with_parent(request.get("parent_pid"))
    _apply_limits(request["limits"])
    # SIGXCPU's default action kills without a word; the parent reads the
    # signal from the exit status, so the default is what we want.
    result_path = Path(request["result_path"])
    try:
        if request.get("operation") == "clean_pixels":
            payload: dict[str, Any] = _clean_pixels_in_child(request)
        else:
            payload = _extract_in_child(request)
    except errors.SieveError as exc:
        payload = {"error": {"code": exc.code, "message": exc.message}}
    except MemoryError:
        payload = {"error": {"code": errors.ExtractionOutOfMemoryError.code, "message": ""}}
    except Exception:
        payload = {"internal": traceback.format_exc()}
    _write_result(result_path, payload)
    return 0


def _extract_in_child(request: dict[str, Any]) -> dict[str, Any]:
    from worker.extractors import extractor_for, load_plugins

    load_plugins(request["plugins"])
    extraction = extractor_for(request["media_type"]).extract(
        Path(request["source"]),
        Path(request["artifacts_dir"]),
        LimitSettings.model_validate(request["limits"]),
        MediaSettings.model_validate(request["media"]),
    )
    return {"extraction": extraction.to_dict()}


def _clean_pixels_in_child(request: dict[str, Any]) -> dict[str, Any]:
    import dataclasses

    import numpy as np
    import pydicom

    from worker.imaging import deid
    from worker.imaging.headers import HEADER_ERRORS

    source = Path(request["source"])
    try:
        header = pydicom.dcmread(source, stop_before_pixels=True)
    except HEADER_ERRORS as exc:
        raise errors.CorruptFileError(f"not a readable DICOM file: {exc}") from exc
    frames, cleaning = deid.cleaned_frames(
        source,
        header,
        request["identifiers"],
        MediaSettings.model_validate(request["media"]),
        [RegionRule.model_validate(rule) for rule in request["region_rules"]],
    )
    np.save(request["frames_path"], np.stack(frames), allow_pickle=False)
    return {"cleaning": dataclasses.asdict(cleaning)}


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(_child_main(Path(sys.argv[1])))
