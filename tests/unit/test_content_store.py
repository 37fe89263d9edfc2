"""Originals are copied into a content-addressed store while being hashed."""

from __future__ import annotations

import hashlib
import io
import stat
from pathlib import Path

import pytest

from worker import content_store, errors, hashing
from worker.content_store import object_relative_path, store_file

# Larger than one read chunk, so hashing and copying span several blocks.
MULTI_CHUNK_BYTES = bytes(range(256)) * (hashing.CHUNK_BYTES // 256 * 2 + 7)


@pytest.fixture
def objects_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "objects"


def write_source(tmp_path: Path, name: str, content: bytes) -> Path:
    source = tmp_path / "inputs" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(content)
    return source


def stored_files(objects_dir: Path) -> list[Path]:
    """Every stored object, staging area excluded."""
    return sorted(
        path for path in objects_dir.rglob("*") if path.is_file() and path.parent.name != "tmp"
    )


def staging_leftovers(objects_dir: Path) -> list[Path]:
    return sorted((objects_dir / "tmp").glob("*"))  # none, when staging never began


@pytest.mark.parametrize(
    "content",
    [b"", b"hello, sieve\n", MULTI_CHUNK_BYTES],
    ids=["empty", "small", "several chunks"],
)
def test_the_stored_object_has_the_hashes_and_size_of_its_source(
    tmp_path: Path, objects_dir: Path, content: bytes
) -> None:
    source = write_source(tmp_path, "original.bin", content)

    stored = store_file(source, objects_dir)

    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert stored.md5 == hashlib.md5(content, usedforsecurity=False).hexdigest()
    assert stored.size_bytes == len(content)
    assert (objects_dir / stored.relative_path).read_bytes() == content


def test_objects_fan_out_by_the_first_two_hex_digits(tmp_path: Path, objects_dir: Path) -> None:
    source = write_source(tmp_path, "letter.txt", b"Dear Sir or Madam")
    digest = hashlib.sha256(b"Dear Sir or Madam").hexdigest()

    stored = store_file(source, objects_dir)

    assert stored.relative_path == f"{digest[:2]}/{digest[2:]}" == object_relative_path(digest)
    assert stored_files(objects_dir) == [objects_dir / digest[:2] / digest[2:]]


def test_storing_the_same_content_twice_keeps_one_object(tmp_path: Path, objects_dir: Path) -> None:
    first_source = write_source(tmp_path, "a.pdf", MULTI_CHUNK_BYTES)
    second_source = write_source(tmp_path, "copy of a.pdf", MULTI_CHUNK_BYTES)

    first = store_file(first_source, objects_dir)
    second = store_file(second_source, objects_dir)

    assert first == second
    assert stored_files(objects_dir) == [objects_dir / first.relative_path]
    assert staging_leftovers(objects_dir) == []


def test_different_contents_are_stored_separately(tmp_path: Path, objects_dir: Path) -> None:
    first = store_file(write_source(tmp_path, "a", b"first"), objects_dir)
    second = store_file(write_source(tmp_path, "b", b"second"), objects_dir)

    assert first.sha256 != second.sha256
    assert (objects_dir / first.relative_path).read_bytes() == b"first"
    assert (objects_dir / second.relative_path).read_bytes() == b"second"
    assert staging_leftovers(objects_dir) == []


def test_a_stored_object_is_read_only(tmp_path: Path, objects_dir: Path) -> None:
    stored = store_file(write_source(tmp_path, "a", b"evidence"), objects_dir)

    mode = stat.S_IMODE((objects_dir / stored.relative_path).stat().st_mode)

    assert mode == 0o440


def test_the_store_keeps_its_copy_when_the_source_changes_later(
    tmp_path: Path, objects_dir: Path
) -> None:
    source = write_source(tmp_path, "a", b"as submitted")
    stored = store_file(source, objects_dir)

    source.write_bytes(b"edited afterwards")

    assert (objects_dir / stored.relative_path).read_bytes() == b"as submitted"


def test_an_unreadable_source_leaves_no_temporary_file(tmp_path: Path, objects_dir: Path) -> None:
    a_directory = tmp_path / "not-a-file"
    a_directory.mkdir()

    with pytest.raises(IsADirectoryError):
        store_file(a_directory, objects_dir)

    assert staging_leftovers(objects_dir) == []
    assert stored_files(objects_dir) == []


def test_a_missing_source_leaves_no_temporary_file(tmp_path: Path, objects_dir: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store_file(tmp_path / "gone.pdf", objects_dir)

    assert staging_leftovers(objects_dir) == []


def test_a_failure_after_copying_leaves_no_temporary_file(
    tmp_path: Path, objects_dir: Path
) -> None:
    content = b"copied, then the store could not place it"
    digest = hashlib.sha256(content).hexdigest()
    objects_dir.mkdir(parents=True)
    # A plain file where the fan-out directory belongs makes placing the object fail.
    (objects_dir / digest[:2]).write_bytes(b"in the way")

    with pytest.raises(OSError):
        store_file(write_source(tmp_path, "a", content), objects_dir)

    assert staging_leftovers(objects_dir) == []


def test_a_stream_is_stored_as_it_arrives_up_to_its_limit(objects_dir: Path) -> None:
    content = b"x" * 5000
    stored = content_store.store_stream(io.BytesIO(content), objects_dir, max_bytes=5000)
    assert stored.sha256 == hashlib.sha256(content).hexdigest()
    assert (objects_dir / stored.relative_path).read_bytes() == content
    with pytest.raises(errors.LimitExceededError, match="limit of 4999 bytes"):
        content_store.store_stream(io.BytesIO(content), objects_dir, max_bytes=4999)
    assert staging_leftovers(objects_dir) == []
    assert stored_files(objects_dir) == [objects_dir / stored.relative_path]
