"""The extraction sandbox: a hostile file costs one child process, never the caller."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.sandbox_probes import PREFIX
from worker import errors, sandbox
from worker.config import LimitSettings, MediaSettings

PLUGINS = ["tests.sandbox_probes"]
# The child spends about 1.5 s of CPU importing the extractors before a probe runs, so
# the CPU limit leaves room for that: a hog must meet the memory limit first.
TIGHT = LimitSettings(extract_wall_s=20, extract_cpu_s=4, extract_memory_mb=512)


@pytest.fixture()
def source(tmp_path: Path) -> Path:
    path = tmp_path / "input"
    path.write_text("probe text")
    return path


def _extract(kind: str, source: Path, limits: LimitSettings = TIGHT, **kwargs: object):
    return sandbox.extract_isolated(
        PREFIX + kind,
        source,
        source.parent / "artifacts",
        limits,
        MediaSettings(),
        plugins=PLUGINS,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_well_behaved_extraction_comes_back_whole(source: Path) -> None:
    extraction = _extract("ok", source)
    assert extraction.extractor == "probe-ok/1"
    assert [(s.kind.value, s.index, s.label, s.text) for s in extraction.segments] == [
        ("page", 0, "page 1", "probe text")
    ]
    assert extraction.segments[0].attributes == {"probe": "probe-ok"}
    assert extraction.metadata == {"page_count": 1}


def test_a_spinning_parser_is_stopped_by_the_cpu_limit(source: Path) -> None:
    started = time.monotonic()
    with pytest.raises(errors.ExtractionTimeoutError) as caught:
        _extract("spin", source)
    assert caught.value.code == "timeout"
    assert "4 s CPU-time limit" in caught.value.message
    assert time.monotonic() - started < 15


def test_a_parser_blocked_without_cpu_is_stopped_by_the_wall_clock(source: Path) -> None:
    limits = LimitSettings(extract_wall_s=2, extract_cpu_s=60, extract_memory_mb=512)
    started = time.monotonic()
    with pytest.raises(errors.ExtractionTimeoutError, match="2 s wall-clock limit"):
        _extract("sleep", source, limits)
    assert time.monotonic() - started < 10


def test_unbounded_allocation_is_stopped_by_the_memory_limit(source: Path) -> None:
    with pytest.raises(errors.ExtractionOutOfMemoryError) as caught:
        _extract("hog", source)
    assert caught.value.code == "oom"
    assert "512 MB memory limit" in caught.value.message


def test_a_crashing_parser_is_recorded_as_crashed(source: Path) -> None:
    with pytest.raises(errors.ExtractionCrashedError, match="SIGSEGV") as caught:
        _extract("crash", source)
    assert caught.value.code == "crashed"


def test_a_sieve_error_in_the_child_comes_back_as_the_same_class(source: Path) -> None:
    with pytest.raises(errors.EncryptedFileError, match="the probe says it is encrypted"):
        _extract("encrypted", source)


def test_a_bug_in_the_child_comes_back_with_its_traceback(source: Path) -> None:
    with pytest.raises(errors.InternalError) as caught:
        _extract("bug", source)
    assert caught.value.code == "internal"
    assert "KeyError: 'a bug in an extractor'" in (caught.value.detail or "")
    assert "Traceback" in (caught.value.detail or "")


def test_the_heartbeat_runs_while_the_child_works_and_can_stop_it(source: Path) -> None:
    beats: list[float] = []

    class Stop(Exception):
        pass

    def heartbeat() -> None:
        beats.append(time.monotonic())
        raise Stop

    limits = LimitSettings(extract_wall_s=60, extract_cpu_s=60, extract_memory_mb=512)
    started = time.monotonic()
    with pytest.raises(Stop):
        _extract("sleep", source, limits, heartbeat=heartbeat)
    assert len(beats) == 1
    assert time.monotonic() - started < 15


def test_sandbox_off_runs_in_process(source: Path) -> None:
    limits = LimitSettings(sandbox=False)
    with pytest.raises(errors.EncryptedFileError):
        _extract("encrypted", source, limits)


def test_error_classes_are_found_by_their_stored_code() -> None:
    assert errors.error_class_for("corrupt_file") is errors.CorruptFileError
    assert errors.error_class_for("timeout") is errors.ExtractionTimeoutError
    assert errors.error_class_for("internal") is errors.InternalError
    assert errors.error_class_for("no_such_code") is errors.SieveError
    codes = [cls.code for cls in _all_error_classes()]
    assert len(codes) == len(set(codes)), "two error classes share a stored code"


def _all_error_classes() -> list[type[errors.SieveError]]:
    found, pending = [], [errors.SieveError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found
