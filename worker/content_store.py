"""A content-addressed store of original files: ``objects/ab/cdef…``.

Originals are copied in while being hashed (one read), so what Sieve processes
is exactly what was hashed at ingest, even if the user's copy changes or goes
away later. SHA-256 names the object; MD5 is computed in the same pass because
eDiscovery load files still expect it.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from worker import errors, hashing


@dataclass(frozen=True)
class StoredObject:
    """An original as stored: its hashes, size and path inside the store."""

    sha256: str
    md5: str
    size_bytes: int
    relative_path: str  # "ab/cdef…", relative to the objects directory


def object_relative_path(sha256: str) -> str:
    """Where an object with this hash lives, relative to the store root."""
    return f"{sha256[:2]}/{sha256[2:]}"


def store_file(source: Path, objects_dir: Path) -> StoredObject:
    """Copy ``source`` into the store while hashing it; return what was stored.

    Raises ``OSError`` when ``source`` cannot be read or the store written.
    """
    with source.open("rb") as stream:
        return store_stream(stream, objects_dir)


def store_stream(
    stream: BinaryIO, objects_dir: Path, *, max_bytes: int | None = None
) -> StoredObject:
    """Copy what ``stream`` yields into the store while hashing it; return what was stored.

    Writing goes to a temporary file that is renamed into place, so a crash
    never leaves a partial object under a valid name. An object already present
    is kept (same hash, same bytes) and the new copy discarded. Past
    ``max_bytes`` the copy stops and ``LimitExceededError`` is raised, with
    nothing stored.
    """
    staging_dir = objects_dir / "tmp"
    staging_dir.mkdir(parents=True, exist_ok=True)
    handle, staging_name = tempfile.mkstemp(dir=staging_dir)
    staging_path = Path(staging_name)
    source: hashing.Readable = stream if max_bytes is None else _LimitedReader(stream, max_bytes)
    try:
        with os.fdopen(handle, "wb") as staging:
            digests = hashing.hash_stream(source, ("sha256", "md5"), copy_to=staging)
        digest = digests.hexdigests["sha256"]
        relative_path = object_relative_path(digest)
        final_path = objects_dir / relative_path
        if final_path.exists():
            staging_path.unlink()
        else:
            final_path.parent.mkdir(parents=True, exist_ok=True)
            staging_path.chmod(0o440)
            os.replace(staging_path, final_path)
    except BaseException:
        staging_path.unlink(missing_ok=True)
        raise
    return StoredObject(digest, digests.hexdigests["md5"], digests.size_bytes, relative_path)


class _LimitedReader:
    """A read-only view of a stream that refuses to yield more than ``max_bytes``."""

    def __init__(self, stream: BinaryIO, max_bytes: int) -> None:
        self._stream = stream
        self._max_bytes = max_bytes
        self._left = max_bytes

    def read(self, size: int = -1) -> bytes:
        # One byte past the limit is asked for, so a stream of exactly the
        # limit passes and one byte more is caught.
        chunk = self._stream.read(size if size >= 0 else self._left + 1)
        self._left -= len(chunk)
        if self._left < 0:
            raise errors.LimitExceededError(f"larger than the limit of {self._max_bytes} bytes")
        return chunk


def store_bytes(data: bytes, objects_dir: Path) -> StoredObject:
    """Store ``data`` (a manifest Sieve wrote, say) as an object, exactly as a file would be."""
    staging_dir = objects_dir / "tmp"
    staging_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=staging_dir, delete=False) as handle:
        handle.write(data)
    try:
        return store_file(Path(handle.name), objects_dir)
    finally:
        Path(handle.name).unlink(missing_ok=True)
