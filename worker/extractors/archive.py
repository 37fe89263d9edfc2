"""ZIP archives: every member checked and written out as a child item of its own.

A ZIP is a container, not a document: each file in it becomes an item with
the archive as its parent (its own state, error code, result and results row,
its path ``bundle.zip › reports/q1.pdf``), extracted later by the extractor
for its own type. Members of a ZIP inside the ZIP are read here, in the same
pass, and become children named by their full path (``inner.zip/q1.pdf``):
nested archives share one budget, so a ZIP of ZIPs cannot multiply itself
into millions of items.

Everything in a ZIP is a claim by whoever made it. A member's name may climb
out of the target (``../../etc/cron.d/x``, ``/etc/passwd``, ``C:\\x``), its
Unix mode may make it a symbolic link, its declared sizes may lie, and a member
may itself be an archive, to any depth. So the central directory is read
member by member (never ``extractall``), each name is checked before anything
is written, every byte is counted as it is decompressed (a bomb is stopped by
what it produces, not by what it declares), and nested archives share one
budget of members and bytes with the archive that holds them.

A member refused for any of these reasons is recorded in
``metadata["refused"]`` and the archive goes on with the others. Only when no
member at all could be written does the archive fail, with the most telling
of its members' errors; a member that is written but cannot be read fails
later, alone, as its own item.

Extraction runs in a sandboxed child process (worker/sandbox.py), but this
module bounds itself too: memory by reading in chunks, disk and time by the
caps in :class:`worker.config.LimitSettings`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import logging
import lzma
import os
import re
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from worker import errors, media_types
from worker.config import LimitSettings, MediaSettings
from worker.extractors import registry
from worker.extractors.base import (
    ChildRole,
    ExtractedChild,
    Extraction,
    Extractor,
    errors_mapped_to,
)

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/zip"

# Under the archive's artifacts directory: the members' own bytes, under their
# archive paths, and each member's derived files in a folder named after its
# position in the central directory (never after its name, which is untrusted).
MEMBERS_DIR = "members"
DERIVED_DIR = "derived"

# How much to ask zipfile for at a time, by compression method. zlib inflates
# at most what is asked for, so stored and deflated members stream a MiB at a
# time. zipfile hands LZMA each compressed read whole (4 KiB at least), which
# can expand some ten-thousand-fold: small reads keep that to tens of MB. bzip2
# is left out: one 4 KiB read of it can expand to gigabytes.
_CHUNK_BYTES_BY_METHOD: dict[int, int] = {
    zipfile.ZIP_STORED: 1024 * 1024,
    zipfile.ZIP_DEFLATED: 1024 * 1024,
    zipfile.ZIP_LZMA: 4096,
}

# Bit 0: encrypted with a password; bit 6: "strong encryption".
_ENCRYPTED_FLAGS = 0x0001 | 0x0040

# A small member may be very repetitive (a CSV of zeros) and still harmless:
# the compression ratio only counts once a member has expanded past this.
_RATIO_GRACE_BYTES = 1024 * 1024

# Linux's NAME_MAX: a longer path component cannot be written.
_MAX_NAME_COMPONENT_BYTES = 255

# zipfile turns the whole central directory into objects before anything can be
# counted, so its size is checked first. A real entry is 46 bytes plus its name
# and extra fields: on average far below this.
_MAX_DIRECTORY_BYTES_PER_MEMBER = 1024

# Member names go into reports and messages; a hostile one can be 64 KiB long.
_REPORTED_NAME_CHARS = 500
# How much of a member's own error message the archive's error quotes.
_QUOTED_MESSAGE_CHARS = 300
# Characters escaped in reported names: controls, invisible formatting (bidi
# overrides among them), and line and paragraph separators.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})

# "C:x", "C:/x", "C:\x": a drive letter, absolute or relative to that drive's
# current folder; either way it points outside the target on Windows.
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")

# What zipfile raises for archives and members it cannot read: its own
# BadZipFile, and whatever its header parsing and decompressors let through
# (a negative seek is a ValueError, a bad UTF-8 name a UnicodeDecodeError).
_ZIP_FORMAT_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    ValueError,
)
# While the central directory is parsed, NotImplementedError means a "version
# needed to extract" no ZIP tool has ever written: a damaged header.
_ARCHIVE_FORMAT_ERRORS: tuple[type[BaseException], ...] = (*_ZIP_FORMAT_ERRORS, NotImplementedError)

# End of central directory records (APPNOTE 4.3.16, 4.3.14, 4.3.15).
_END_RECORD = struct.Struct("<4s4H2LH")
_END_RECORD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_END_RECORD_SIGNATURE = b"PK\x06\x06"
_MAX_COMMENT_BYTES = 0xFFFF


class RefusalReason(str, enum.Enum):
    """Why a member was not written; stored in ``metadata["refused"]``."""

    absolute_path = "absolute_path"  # "/etc/passwd", "C:\x", "\\server\share"
    parent_reference = "parent_reference"  # a ".." component
    nul_in_name = "nul_in_name"  # tools disagree on where such a name ends
    empty_name = "empty_name"  # nothing left once "." and "/" are dropped
    name_too_long = "name_too_long"  # a path component over 255 bytes
    duplicate = "duplicate"  # a second member with the same path
    path_conflict = "path_conflict"  # a file where other members need a folder
    symlink = "symlink"  # its Unix mode says symbolic link
    special_file = "special_file"  # a device, FIFO or socket
    outside_target = "outside_target"  # resolves outside the members folder
    encrypted = "encrypted"  # needs a password
    ratio_exceeded = "ratio_exceeded"  # expanded past max_archive_ratio x its compressed size
    total_size_exceeded = "total_size_exceeded"  # past max_archive_expanded_bytes in all
    too_deep = "too_deep"  # an archive nested deeper than max_archive_depth


_LIMIT_REASONS = frozenset(
    {RefusalReason.ratio_exceeded, RefusalReason.total_size_exceeded, RefusalReason.too_deep}
)

# When nothing could be extracted, the archive fails with the first of these
# that some member ran into: a bomb says more than a bad path, a bad path more
# than a password, and all three more than the members' own errors.
_ERROR_PRECEDENCE: tuple[type[errors.SieveError], ...] = (
    errors.LimitExceededError,
    errors.UnsafeArchiveError,
    errors.EncryptedFileError,
    errors.CorruptFileError,
)


def refusal_error(reason: RefusalReason) -> type[errors.InputError]:
    """The error a refusal for ``reason`` stands for (its ``code`` is the member's error code)."""
    if reason in _LIMIT_REASONS:
        return errors.LimitExceededError
    if reason is RefusalReason.encrypted:
        return errors.EncryptedFileError
    return errors.UnsafeArchiveError


@registry.register
class ZipExtractor(Extractor):
    """Reads ZIP archives: each file member becomes a child item."""

    name = "zip"
    version = "2"
    media_types = frozenset({MEDIA_TYPE})
    score = 100

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        """Every member that passed the checks, written out as a child, in archive order.

        Members are written to ``artifacts_dir/members/<archive path>``; an
        archive inside the archive is read the same way, one level deeper, on
        the same budget, and its members become children named
        ``inner.zip/<their path>``. Each child's name is its member path.

        ``metadata["members"]`` lists every file member with its ``state``
        (extracted: written out as a child; failed or refused) and, unless
        extracted, its ``error_code`` and ``error``; ``metadata["refused"]``
        says why each refused one was (:class:`RefusalReason`);
        ``metadata["files"]`` counts expected, extracted and failed members;
        ``metadata["expanded_bytes"]`` counts every byte decompressed,
        refused members' included.

        Raises, when no member could be written, the most telling error among
        the members': :class:`~worker.errors.LimitExceededError` (a bomb, the
        total or depth cap), :class:`~worker.errors.UnsafeArchiveError` (paths
        outside the archive, links), :class:`~worker.errors.EncryptedFileError`,
        :class:`~worker.errors.CorruptFileError`, else the first member's own
        error. An archive with no file members raises
        :class:`~worker.errors.EmptyFileError`: it is valid, it just holds
        nothing. Raises :class:`~worker.errors.CorruptFileError` when the
        archive itself cannot be read and
        :class:`~worker.errors.LimitExceededError` when it holds more than
        ``limits.max_archive_members`` members.
        """
        budget = _Budget(
            members_left=limits.max_archive_members,
            bytes_left=limits.max_archive_expanded_bytes,
        )
        context = _Context(limits=limits, media=media, budget=budget, depth=0)
        contents = _read_archive(source, artifacts_dir, context)
        if not contents.extracted_any:
            raise _most_telling_error(contents)
        root = artifacts_dir.resolve()
        children = [
            ExtractedChild(name, written.relative_to(root).as_posix(), ordinal, ChildRole.member)
            for ordinal, (name, written) in enumerate(contents.children, start=1)
        ]
        failed = sum(1 for member in contents.members if member["state"] != "extracted")
        return Extraction(
            extractor=self.qualified_name(),
            media_type=MEDIA_TYPE,
            segments=[],
            metadata={
                "members": contents.members,
                "refused": contents.refused,
                "files": {
                    "expected": len(children) + failed,
                    "extracted": len(children),
                    "failed": failed,
                },
                "expanded_bytes": budget.bytes_spent,
            },
            children=children,
            container=True,
        )


# --- state shared while reading one archive tree -------------------------------


@dataclass
class _Budget:
    """What the submitted archive and every archive inside it may still cost."""

    members_left: int
    bytes_left: int
    bytes_spent: int = 0
    # Set once a member ran past the total: later members are refused unread,
    # so the work done stays within the cap plus one chunk.
    exhausted: bool = False


@dataclass(frozen=True)
class _Context:
    """What reading one archive needs; ``depth`` is 0 for the submitted archive."""

    limits: LimitSettings
    media: MediaSettings
    budget: _Budget
    depth: int


class _Refusal(Exception):
    """A member is not written (or is removed again), for ``reason``."""

    def __init__(self, reason: RefusalReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class _Planned:
    """A file member whose name passed the checks, and where it will be written."""

    position: int  # 1-based, in central directory order
    info: zipfile.ZipInfo
    parts: tuple[str, ...]

    @property
    def path(self) -> str:
        """The member's path as reports show it."""
        return _printable("/".join(self.parts))


@dataclass(frozen=True)
class _NameRefused:
    """A member refused for its name or kind before anything was read."""

    member: str
    refusal: _Refusal


@dataclass(frozen=True)
class _Written:
    """A member's bytes on disk, as counted while they were written."""

    path: Path
    size: int
    sha256: str


@dataclass(frozen=True)
class _Problem:
    """Why one member gave nothing: used to pick the archive's error when none did."""

    member: str
    error: type[errors.SieveError]
    message: str


@dataclass
class _Contents:
    """What one archive, and the archives inside it, gave."""

    children: list[tuple[str, Path]] = field(default_factory=list)  # name, where written
    members: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)
    problems: list[_Problem] = field(default_factory=list)

    @property
    def extracted_any(self) -> bool:
        """Whether at least one member was written out as a child."""
        return bool(self.children)

    def refuse(self, member: str, refusal: _Refusal, written: _Written | None = None) -> None:
        """Record a member that was not written, or was removed again."""
        logger.warning("refused archive member %s: %s", member, refusal.detail)
        error = refusal_error(refusal.reason)
        self.refused.append(
            {"member": member, "reason": refusal.reason.value, "detail": refusal.detail}
        )
        self.members.append(
            _member_entry(member, written, None, "refused", error.code, refusal.detail)
        )
        self.problems.append(_Problem(member, error, refusal.detail))

    def fail(
        self,
        member: str,
        error: errors.SieveError,
        written: _Written | None = None,
        media_type: str | None = None,
    ) -> None:
        """Record a member that could not be read; the archive goes on."""
        logger.info("archive member %s failed (%s): %s", member, error.code, error.message)
        self.members.append(
            _member_entry(member, written, media_type, "failed", error.code, error.message)
        )
        self.problems.append(_Problem(member, type(error), error.message))

    def add_child(self, member: str, written: _Written, media_type: str) -> None:
        """Record a member written out to become a child item."""
        self.members.append(_member_entry(member, written, media_type, "extracted"))
        self.children.append((member, written.path))

    def add_nested(self, member: str, written: _Written, nested: _Contents) -> None:
        """Merge an archive inside this one: its members become ``member/<their path>``."""
        if nested.extracted_any:
            self.members.append(_member_entry(member, written, MEDIA_TYPE, "extracted"))
        else:
            self.fail(member, _most_telling_error(nested), written, MEDIA_TYPE)
        for inner in nested.members:
            self.members.append({**inner, "path": f"{member}/{inner['path']}"})
        for refusal in nested.refused:
            self.refused.append({**refusal, "member": f"{member}/{refusal['member']}"})
        for name, written_path in nested.children:
            self.children.append((f"{member}/{name}", written_path))
        self.problems.extend(
            _Problem(f"{member}/{problem.member}", problem.error, problem.message)
            for problem in nested.problems
        )


def _member_entry(
    member: str,
    written: _Written | None,
    media_type: str | None,
    state: str,
    error_code: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One row of ``metadata["members"]``; size and hash are what was actually written."""
    entry: dict[str, Any] = {
        "path": member,
        "size": written.size if written else None,
        "sha256": written.sha256 if written else None,
        "media_type": media_type,
        "state": state,
    }
    if error_code is not None:
        entry["error_code"] = error_code
        entry["error"] = error
    return entry


# --- one archive -------------------------------------------------------------------


def _read_archive(source: Path, artifacts_dir: Path, context: _Context) -> _Contents:
    """Check, write and extract every member of the ZIP at ``source``.

    Raises :class:`~worker.errors.CorruptFileError` when the archive cannot be
    read and :class:`~worker.errors.LimitExceededError` when it holds more
    members than the budget has left; every other problem is recorded per member.
    """
    archive_bytes = source.stat().st_size
    _check_declared_directory(source, context.limits)
    contents = _Contents()
    with _open_archive(source) as archive:
        infos = archive.infolist()
        _claim_members(len(infos), context)
        for item in _plan_members(infos):
            if isinstance(item, _NameRefused):
                contents.refuse(item.member, item.refusal)
            else:
                _read_member(archive, item, archive_bytes, artifacts_dir, context, contents)
    return contents


def _open_archive(source: Path) -> zipfile.ZipFile:
    """Open ``source`` and parse its central directory; nothing is decompressed yet."""
    with errors_mapped_to(
        errors.CorruptFileError, _ARCHIVE_FORMAT_ERRORS, "not a readable ZIP archive"
    ):
        return zipfile.ZipFile(source)


def _check_declared_directory(source: Path, limits: LimitSettings) -> None:
    """Refuse an archive whose end record declares too many members or too big a directory.

    zipfile parses the whole central directory into objects before anything
    can be counted; this looks at the end record first, so a directory of
    millions of entries is refused before it costs memory. An end record that
    cannot be found is left for zipfile to report as corrupt.
    """
    declared = _declared_directory(source)
    if declared is None:
        return
    entry_count, directory_bytes = declared
    if entry_count > limits.max_archive_members:
        raise errors.LimitExceededError(
            f"the archive declares {entry_count} members, "
            f"more than the limit of {limits.max_archive_members}"
        )
    if directory_bytes > limits.max_archive_members * _MAX_DIRECTORY_BYTES_PER_MEMBER:
        raise errors.LimitExceededError(
            f"the archive's central directory is {directory_bytes} bytes, too large "
            f"for the limit of {limits.max_archive_members} members"
        )


def _declared_directory(source: Path) -> tuple[int, int] | None:
    """(entry count, central directory bytes) from the end record, ZIP64 included."""
    with source.open("rb") as stream:
        stream.seek(0, os.SEEK_END)
        tail_start = max(0, stream.tell() - _END_RECORD.size - _MAX_COMMENT_BYTES)
        stream.seek(tail_start)
        tail = stream.read()
        # The last signature with a whole record after it, as zipfile looks for it.
        at = tail.rfind(_END_RECORD_SIGNATURE, 0, len(tail) - _END_RECORD.size + 4)
        if at < 0:
            return None
        fields = _END_RECORD.unpack_from(tail, at)
        entry_count, directory_bytes = fields[4], fields[5]
        if entry_count != 0xFFFF and directory_bytes != 0xFFFFFFFF:
            return entry_count, directory_bytes
        locator_at = at - _ZIP64_LOCATOR.size
        if locator_at < 0:
            return entry_count, directory_bytes
        signature, _, record_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, locator_at)
        if signature != _ZIP64_LOCATOR_SIGNATURE:
            return entry_count, directory_bytes
        stream.seek(record_offset)
        record = stream.read(_ZIP64_END_RECORD.size)
    if len(record) < _ZIP64_END_RECORD.size or record[:4] != _ZIP64_END_RECORD_SIGNATURE:
        return None
    zip64_fields = _ZIP64_END_RECORD.unpack(record)
    return zip64_fields[7], zip64_fields[8]


def _claim_members(count: int, context: _Context) -> None:
    """Take ``count`` members from the budget the whole archive tree shares."""
    budget, limit = context.budget, context.limits.max_archive_members
    if count > budget.members_left:
        if budget.members_left == limit:
            raise errors.LimitExceededError(
                f"the archive holds {count} members, more than the limit of {limit}"
            )
        raise errors.LimitExceededError(
            f"the archive holds {count} members, more than the {budget.members_left} "
            f"left of the limit of {limit} for an archive and the archives inside it"
        )
    budget.members_left -= count


# --- names -------------------------------------------------------------------------


def _plan_members(infos: list[zipfile.ZipInfo]) -> list[_Planned | _NameRefused]:
    """Every member whose name needs a decision, in archive order: to write, or refused.

    Folder entries are only checked: writing a file creates its folders. A
    second member with a path already taken, and a file whose path other
    members need as a folder, are refused so that no member can replace another.
    """
    plan: list[_Planned | _NameRefused] = []
    taken: set[tuple[str, ...]] = set()
    for position, info in enumerate(infos, start=1):
        try:
            parts = _safe_parts(info)
            _check_file_kind(info)
        except _Refusal as refusal:
            plan.append(_NameRefused(_printable(info.orig_filename), refusal))
            continue
        if _is_folder(info):
            continue
        if parts in taken:
            duplicate = _Refusal(RefusalReason.duplicate, "another member has the same path")
            plan.append(_NameRefused(_printable(info.orig_filename), duplicate))
            continue
        taken.add(parts)
        plan.append(_Planned(position, info, parts))
    folders = {parts[:end] for parts in taken for end in range(1, len(parts))}
    conflict = _Refusal(RefusalReason.path_conflict, "other members need this path as a folder")
    return [
        _NameRefused(item.path, conflict)
        if isinstance(item, _Planned) and item.parts in folders
        else item
        for item in plan
    ]


def _is_folder(info: zipfile.ZipInfo) -> bool:
    """A folder entry; archives made on Windows may end it with a backslash."""
    return info.orig_filename.replace("\\", "/").endswith("/")


def _safe_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The member's path components, or a refusal when the name could leave the target.

    Backslashes count as separators: on Windows they are, and "..\\x" must not
    become a harmless-looking file name here and a traversal there.
    """
    # zipfile cuts ``filename`` at a NUL; ``orig_filename`` is the name as stored.
    raw = info.orig_filename
    if "\x00" in raw:
        raise _Refusal(RefusalReason.nul_in_name, "the name contains a NUL character")
    name = raw.replace("\\", "/")
    if name.startswith("/") or _DRIVE_LETTER.match(name):
        raise _Refusal(RefusalReason.absolute_path, "the name is an absolute path")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise _Refusal(RefusalReason.parent_reference, "the name climbs out with '..'")
    if not parts and not _is_folder(info):
        raise _Refusal(RefusalReason.empty_name, "the name is empty")
    for part in parts:
        if len(part.encode("utf-8")) > _MAX_NAME_COMPONENT_BYTES:
            raise _Refusal(
                RefusalReason.name_too_long,
                f"a part of the name is longer than {_MAX_NAME_COMPONENT_BYTES} bytes",
            )
    return parts


def _check_file_kind(info: zipfile.ZipInfo) -> None:
    """Refuse links and special files: the Unix mode sits in the top 16 bits."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        raise _Refusal(RefusalReason.symlink, "the member is a symbolic link")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise _Refusal(RefusalReason.special_file, f"the member is a special file (mode {mode:o})")


def _shortened(message: str) -> str:
    """A member's message cut to a readable length: nested archives nest their messages."""
    if len(message) > _QUOTED_MESSAGE_CHARS:
        return message[:_QUOTED_MESSAGE_CHARS] + "..."
    return message


def _printable(name: str) -> str:
    """``name`` safe to store and show: invisible characters escaped, a long name cut.

    Control characters include NUL, which Postgres text rejects; format
    characters include U+202E (right-to-left override), which makes
    "invoice<U+202E>fdp.exe" show as "invoiceexe.pdf".
    """
    shown = "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in _INVISIBLE_CATEGORIES else char
        for char in name
    )
    if len(shown) > _REPORTED_NAME_CHARS:
        return shown[:_REPORTED_NAME_CHARS] + "..."
    return shown


# --- one member --------------------------------------------------------------------


def _read_member(
    archive: zipfile.ZipFile,
    planned: _Planned,
    archive_bytes: int,
    artifacts_dir: Path,
    context: _Context,
    contents: _Contents,
) -> None:
    """Write one member, then extract it; record whatever stops it on ``contents``."""
    try:
        _check_readable(planned.info, context.budget)
        written = _write_member(archive, planned, archive_bytes, artifacts_dir, context)
    except _Refusal as refusal:
        contents.refuse(planned.path, refusal)
        return
    except errors.InputError as error:
        contents.fail(planned.path, error)
        return
    _extract_member(planned, written, artifacts_dir, context, contents)


def _check_readable(info: zipfile.ZipInfo, budget: _Budget) -> None:
    """Refuse or fail, before reading a byte, a member that cannot or may not be read."""
    if info.flag_bits & _ENCRYPTED_FLAGS:
        raise _Refusal(RefusalReason.encrypted, "the member is encrypted and no password was given")
    if budget.exhausted:
        raise _Refusal(
            RefusalReason.total_size_exceeded,
            "not read: earlier members used up the limit on expanded bytes",
        )
    if info.compress_type == zipfile.ZIP_BZIP2:
        raise errors.UnsupportedTypeError(
            "bzip2-compressed members are not read: their expansion cannot be bounded while reading"
        )
    if info.compress_type not in _CHUNK_BYTES_BY_METHOD:
        raise errors.UnsupportedTypeError(
            f"the member uses compression method {info.compress_type}, which Sieve does not read"
        )


def _write_member(
    archive: zipfile.ZipFile,
    planned: _Planned,
    archive_bytes: int,
    artifacts_dir: Path,
    context: _Context,
) -> _Written:
    """Decompress the member to ``members/<path>``, counting and hashing as it goes.

    The bytes actually produced are what count: the ratio cap is
    ``max_archive_ratio`` times the compressed bytes the member can occupy (its
    declared compressed size, but no more than the file has after its header),
    and every byte is taken from the budget the archive tree shares. A member
    stopped by either is removed and refused.
    """
    target = _target_path(artifacts_dir / MEMBERS_DIR, planned)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _zip_errors(f"cannot open {planned.path}"):
        stream = archive.open(planned.info)
    # O_NOFOLLOW: never write through a link, even one left by an earlier attempt.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    with stream, os.fdopen(os.open(target, flags, 0o644), "wb") as output:
        try:
            size, sha256 = _copy_counted(stream, output, planned, archive_bytes, context)
        except BaseException:
            output.close()
            target.unlink(missing_ok=True)
            raise
    return _Written(path=target, size=size, sha256=sha256)


def _target_path(members_dir: Path, planned: _Planned) -> Path:
    """Where the member goes; refused if it would resolve outside ``members_dir``."""
    root = members_dir.resolve()
    target = root.joinpath(*planned.parts).resolve()
    if target == root or not target.is_relative_to(root):
        raise _Refusal(RefusalReason.outside_target, "the path resolves outside the archive")
    return target


def _copy_counted(
    stream: IO[bytes],
    output: IO[bytes],
    planned: _Planned,
    archive_bytes: int,
    context: _Context,
) -> tuple[int, str]:
    """Copy ``stream`` to ``output`` in chunks, enforcing the ratio and total caps as it goes."""
    info, limits, budget = planned.info, context.limits, context.budget
    available = max(0, archive_bytes - info.header_offset)
    compressed_bytes = max(1, min(info.compress_size, available))
    ratio_cap = limits.max_archive_ratio * compressed_bytes
    chunk_bytes = _CHUNK_BYTES_BY_METHOD[info.compress_type]
    digest = hashlib.sha256()
    size = 0
    while True:
        with _zip_errors(f"cannot read {planned.path}"):
            chunk = stream.read(chunk_bytes)
        if not chunk:
            return size, digest.hexdigest()
        size += len(chunk)
        budget.bytes_spent += len(chunk)
        if len(chunk) > budget.bytes_left:
            budget.exhausted = True
            raise _Refusal(
                RefusalReason.total_size_exceeded,
                f"the members expand to more than the limit of "
                f"{limits.max_archive_expanded_bytes} bytes in all",
            )
        budget.bytes_left -= len(chunk)
        if size > _RATIO_GRACE_BYTES and size > ratio_cap:
            raise _Refusal(
                RefusalReason.ratio_exceeded,
                f"expanded past {limits.max_archive_ratio} times its {compressed_bytes} "
                f"compressed bytes (it declares {info.file_size} bytes): a decompression bomb",
            )
        digest.update(chunk)
        output.write(chunk)


@contextlib.contextmanager
def _zip_errors(what: str) -> Iterator[None]:
    """Turn zipfile's complaints about a member into Sieve's input errors.

    NotImplementedError is a compression method or ZIP feature zipfile does
    not implement: unsupported, not corrupt.
    """
    with (
        errors_mapped_to(errors.UnsupportedTypeError, (NotImplementedError,), what),
        errors_mapped_to(errors.CorruptFileError, _ZIP_FORMAT_ERRORS, what),
    ):
        yield


def _extract_member(
    planned: _Planned,
    written: _Written,
    artifacts_dir: Path,
    context: _Context,
    contents: _Contents,
) -> None:
    """Record the written member as a child; read it here only if it is an archive itself."""
    media_type: str | None = None
    try:
        media_type = media_types.detect_media_type(written.path)
        if media_type == MEDIA_TYPE:
            derived_dir = artifacts_dir / DERIVED_DIR / f"{planned.position:05d}"
            nested = _read_nested(written.path, derived_dir, context)
            contents.add_nested(planned.path, written, nested)
            return
    except _Refusal as refusal:
        written.path.unlink(missing_ok=True)
        contents.refuse(planned.path, refusal, written)
        return
    except errors.EmptyFileError:
        media_type = media_types.EMPTY  # an empty file is still a file: its item says so
    except errors.SieveError as error:
        contents.fail(planned.path, error, written, media_type)
        return
    contents.add_child(planned.path, written, media_type)


def _read_nested(source: Path, artifacts_dir: Path, context: _Context) -> _Contents:
    """Read an archive found inside the current one, one level deeper, on the same budget."""
    depth = context.depth + 1
    if depth > context.limits.max_archive_depth:
        raise _Refusal(
            RefusalReason.too_deep,
            f"an archive nested {depth} deep; the limit is {context.limits.max_archive_depth}",
        )
    return _read_archive(source, artifacts_dir, dataclasses.replace(context, depth=depth))


def _most_telling_error(contents: _Contents) -> errors.SieveError:
    """The error for an archive that gave nothing, naming the members behind it."""
    if not contents.problems:
        return errors.EmptyFileError("the ZIP archive holds no files")
    error_class = next(
        (
            candidate
            for candidate in _ERROR_PRECEDENCE
            if any(issubclass(problem.error, candidate) for problem in contents.problems)
        ),
        contents.problems[0].error,
    )
    named = [problem for problem in contents.problems if issubclass(problem.error, error_class)]
    listed = "; ".join(f"{problem.member}: {_shortened(problem.message)}" for problem in named[:3])
    more = f"; and {len(named) - 3} more" if len(named) > 3 else ""
    return error_class(f"nothing could be extracted from the ZIP archive: {listed}{more}")
