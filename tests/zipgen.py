"""ZIP archives for tests, hostile ones included, built with zipfile and byte patches.

zipfile refuses to write some of what attackers write (an encrypted member
without encrypting it, a NUL in a name), so those are written plainly and then
patched in place: the fields patched have fixed offsets in the local header
and the central directory entry (APPNOTE 4.3.7 and 4.3.12), and a patch never
changes a length, so every offset in the archive stays right.
"""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path

# Offsets of the general purpose flags and of the name inside a local file
# header and a central directory entry.
_LOCAL_FLAGS_AT = 6
_LOCAL_NAME_AT = 30
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_CENTRAL_FLAGS_AT = 8
_CENTRAL_NAME_AT = 46
_CENTRAL_LENGTHS = struct.Struct("<3H")  # name, extra and comment lengths, at offset 28
_END_RECORD = struct.Struct("<4s4H2LH")

ENCRYPTED_FLAG = 0x0001

# Every member gets this date, so the same members give the same bytes.
MEMBER_DATE = (2024, 3, 15, 9, 30, 0)

Member = tuple[str | zipfile.ZipInfo, bytes | str]  # str data is written as UTF-8


def make_zip(
    path: Path, members: Iterable[Member], compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    """A ZIP of ``members`` in order, names written exactly as given (``../x`` and ``/x`` too).

    Duplicate names are written as given: zipfile warns about them, and here
    they are the point. The output is the same bytes on every run.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_zip_bytes(members, compression))
    return path


def symlink_member(name: str, target: str) -> Member:
    """A member whose Unix mode makes it a symbolic link to ``target``, as ``zip -y`` writes."""
    info = zipfile.ZipInfo(name, date_time=MEMBER_DATE)
    info.create_system = 3  # Unix: the mode in the top 16 bits counts
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode("utf-8")


def make_zero_bomb(path: Path, member_name: str, expanded_bytes: int) -> Path:
    """A ZIP with one deflated member of ``expanded_bytes`` zeros (about 1000:1).

    Written a MiB at a time, so building a bomb of hundreds of MB takes well
    under a second per 256 MiB and little memory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = bytes(1024 * 1024)
    info = _member_info(member_name, zipfile.ZIP_DEFLATED)
    with (
        zipfile.ZipFile(path, "w") as archive,
        archive.open(info, "w", force_zip64=expanded_bytes > 2**31) as member,
    ):
        left = expanded_bytes
        while left > 0:
            member.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    return path


def make_nested_zip(path: Path, depth: int, innermost: Member) -> Path:
    """``depth`` archives one inside the other; the innermost holds ``innermost``.

    ``depth=1`` is a plain archive of ``innermost``; each level's member is
    named ``level-<n>.zip``.
    """
    data = _zip_bytes([innermost])
    for level in range(depth - 1, 0, -1):
        data = _zip_bytes([(f"level-{level + 1}.zip", data)])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def set_member_flags(path: Path, member_name: str, flags: int) -> Path:
    """OR ``flags`` into the member's general purpose flags, in both of its headers."""
    data = bytearray(path.read_bytes())
    local_at, central_at = _header_offsets(bytes(data), member_name)
    for flags_at in (local_at + _LOCAL_FLAGS_AT, central_at + _CENTRAL_FLAGS_AT):
        (current,) = struct.unpack_from("<H", data, flags_at)
        struct.pack_into("<H", data, flags_at, current | flags)
    path.write_bytes(bytes(data))
    return path


def rename_member(path: Path, old_name: str, new_name: bytes) -> Path:
    """Give a member a raw name zipfile would not write (a NUL in it, say); same length only."""
    old = old_name.encode("utf-8")
    if len(new_name) != len(old):
        raise ValueError("a renamed member keeps the length of its name")
    data = bytearray(path.read_bytes())
    local_at, central_at = _header_offsets(bytes(data), old_name)
    for name_at in (local_at + _LOCAL_NAME_AT, central_at + _CENTRAL_NAME_AT):
        data[name_at : name_at + len(old)] = new_name
    path.write_bytes(bytes(data))
    return path


def flip_data_byte(path: Path, member_name: str) -> Path:
    """Damage the member's stored bytes so its CRC-32 no longer matches."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member_name)
    local_at, _ = _header_offsets(bytes(data), member_name)
    name_length, extra_length = struct.unpack_from("<2H", data, local_at + 26)
    data_at = local_at + _LOCAL_NAME_AT + name_length + extra_length
    data[data_at + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _zip_bytes(members: Iterable[Member], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """The bytes of a ZIP of ``members``, each dated :data:`MEMBER_DATE`."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Duplicate name", category=UserWarning)
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in members:
                info = (
                    name if isinstance(name, zipfile.ZipInfo) else _member_info(name, compression)
                )
                archive.writestr(info, data, compress_type=compression)
    return buffer.getvalue()


def _member_info(name: str, compression: int) -> zipfile.ZipInfo:
    """A member as ``writestr`` would make it from a name, but with a fixed date."""
    info = zipfile.ZipInfo(name, date_time=MEMBER_DATE)
    info.compress_type = compression
    if name.endswith("/"):
        info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10  # 0x10: MS-DOS folder bit
    else:
        info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


def _header_offsets(data: bytes, member_name: str) -> tuple[int, int]:
    """Where the member's local header and central directory entry start."""
    name = member_name.encode("utf-8")
    end = _END_RECORD.unpack_from(data, len(data) - _END_RECORD.size)
    entry_count, directory_at = end[4], end[6]
    at = directory_at
    for _ in range(entry_count):
        if data[at : at + 4] != _CENTRAL_SIGNATURE:
            raise ValueError("not a central directory entry: the archive has a comment or is ZIP64")
        name_length, extra_length, comment_length = _CENTRAL_LENGTHS.unpack_from(data, at + 28)
        entry_name = data[at + _CENTRAL_NAME_AT : at + _CENTRAL_NAME_AT + name_length]
        if entry_name == name:
            (local_at,) = struct.unpack_from("<L", data, at + 42)
            return local_at, at
        at += _CENTRAL_NAME_AT + name_length + extra_length + comment_length
    raise KeyError(member_name)
