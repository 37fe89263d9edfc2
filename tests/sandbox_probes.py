"""Extractors that misbehave on purpose, loaded into the sandbox as a plugin.

Each reads nothing and does one bad thing, so the sandbox's handling of that
thing can be tested exactly: spin on the CPU, allocate without bound, crash
with a segfault, block without using CPU, raise a bug, raise a Sieve error.
"""

from __future__ import annotations

import ctypes
import time
from pathlib import Path

from worker import errors
from worker.config import LimitSettings, MediaSettings
from worker.extractors import registry
from worker.extractors.base import ExtractedSegment, Extraction, Extractor, SegmentKind

PREFIX = "application/x-sieve-probe-"


class _Probe(Extractor):
    version = "1"
    score = 1

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        self.misbehave()
        text = source.read_text()
        return Extraction(
            self.qualified_name(),
            next(iter(self.media_types)),
            [
                ExtractedSegment(
                    SegmentKind.page, 0, "page 1", text, attributes={"probe": self.name}
                )
            ],
            metadata={"page_count": 1},
        )

    def misbehave(self) -> None:
        """Nothing: the well-behaved probe."""


@registry.register
class WellBehaved(_Probe):
    name = "probe-ok"
    media_types = frozenset({PREFIX + "ok"})


@registry.register
class Spinner(_Probe):
    name = "probe-spin"
    media_types = frozenset({PREFIX + "spin"})

    def misbehave(self) -> None:
        while True:
            pass


@registry.register
class Hog(_Probe):
    name = "probe-hog"
    media_types = frozenset({PREFIX + "hog"})

    def misbehave(self) -> None:
        hoard = []
        while True:
            hoard.append(bytearray(64 * 1024 * 1024))


@registry.register
class Crasher(_Probe):
    name = "probe-crash"
    media_types = frozenset({PREFIX + "crash"})

    def misbehave(self) -> None:
        ctypes.string_at(0)


@registry.register
class Sleeper(_Probe):
    name = "probe-sleep"
    media_types = frozenset({PREFIX + "sleep"})

    def misbehave(self) -> None:
        time.sleep(3600)


@registry.register
class Buggy(_Probe):
    name = "probe-bug"
    media_types = frozenset({PREFIX + "bug"})

    def misbehave(self) -> None:
        raise KeyError("a bug in an extractor")


@registry.register
class Encrypted(_Probe):
    name = "probe-encrypted"
    media_types = frozenset({PREFIX + "encrypted"})

    def misbehave(self) -> None:
        raise errors.EncryptedFileError("the probe says it is encrypted")
