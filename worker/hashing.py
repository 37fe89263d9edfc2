"""Digests of files, computed one way everywhere.

A file's SHA-256 is what Sieve trusts it by: it names an original in the
content store, and it pins the model file a worker loads. Computing it in one
place keeps one streaming loop (memory stays at one chunk, whatever the file's
size) and lets a caller that wants several digests, or a copy, get them all
from a single read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

# How much of a file is read at a time.
CHUNK_BYTES = 1024 * 1024

# Digests computed only because other tools expect them (eDiscovery load files
# still carry MD5), never relied on to tell files apart or to detect tampering;
# saying so keeps them working where FIPS mode forbids them for security.
_NOT_FOR_SECURITY = frozenset({"md5", "sha1"})


class Readable(Protocol):
    """Anything with a binary ``read``: a file, an upload's spool, a limiting wrapper."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class FileDigests:
    """The hex digests of one file's bytes, and how many bytes there were."""

    hexdigests: dict[str, str]  # by hashlib name: {"sha256": "9f86d0…"}
    size_bytes: int


def hash_file(
    path: Path,
    algorithms: Sequence[str] = ("sha256",),
    *,
    copy_to: BinaryIO | None = None,
) -> FileDigests:
    """Hash the file at ``path`` with each of ``algorithms`` (hashlib names) in one read.

    When ``copy_to`` is given, every chunk is also written to it, so the copy
    holds exactly the bytes that were hashed. Raises ``OSError`` when the file
    cannot be read (or the copy written) and ``ValueError`` for an algorithm
    hashlib does not know.
    """
    with path.open("rb") as stream:
        return hash_stream(stream, algorithms, copy_to=copy_to)


def hash_stream(
    stream: Readable,
    algorithms: Sequence[str] = ("sha256",),
    *,
    copy_to: BinaryIO | None = None,
) -> FileDigests:
    """Hash what ``stream`` yields until its end, as :func:`hash_file` does a file.

    For bytes that arrive rather than sit on disk (an upload), so they are
    hashed and copied in the same single pass.
    """
    digests = {
        name: hashlib.new(name, usedforsecurity=name not in _NOT_FOR_SECURITY)
        for name in algorithms
    }
    size_bytes = 0
    while chunk := stream.read(CHUNK_BYTES):
        for digest in digests.values():
            digest.update(chunk)
        if copy_to is not None:
            copy_to.write(chunk)
        size_bytes += len(chunk)
    return FileDigests({name: digest.hexdigest() for name, digest in digests.items()}, size_bytes)
