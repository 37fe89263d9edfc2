"""Outlook MSG files for the tests, written from scratch.

No library here writes MSG (python-oxmsg and olefile only read), so the tests
build their own: a Compound File Binary (MS-CFB, version 3, 512-byte sectors,
a mini stream for streams under 4,096 bytes) holding the MS-OXMSG layout — a
``__properties_version1.0`` stream of 16-byte property entries, one
``__substg1.0_PPPPTTTT`` stream per variable-length property, a
``__recip_version1.0_#N`` storage per recipient and an
``__attach_version1.0_#N`` storage per attachment, an embedded message being
a ``__substg1.0_3701000D`` storage inside its attachment.

Only what the tests need is written; readers (olefile, python-oxmsg, Sieve's
extractor) see a well-formed file.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import struct
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import compressed_rtf

# --- MS-CFB --------------------------------------------------------------------------------

_SECTOR = 512
_MINI_SECTOR = 64
_MINI_CUTOFF = 4096
_FREE = 0xFFFFFFFF
_END_OF_CHAIN = 0xFFFFFFFE
_FAT_SECTOR = 0xFFFFFFFD
_NO_STREAM = 0xFFFFFFFF
_STORAGE, _STREAM, _ROOT = 1, 2, 5


@dataclass
class Storage:
    """A storage of a compound file: named streams and named sub-storages."""

    streams: dict[str, bytes] = field(default_factory=dict)
    storages: dict[str, Storage] = field(default_factory=dict)


@dataclass
class _Entry:
    name: str
    kind: int
    data: bytes = b""
    children: list[int] = field(default_factory=list)
    left: int = _NO_STREAM
    right: int = _NO_STREAM
    child: int = _NO_STREAM
    start: int = _END_OF_CHAIN
    size: int = 0


def write_compound_file(root: Storage) -> bytes:
    """The bytes of a version-3 compound file holding ``root``."""
    entries = [_Entry("Root Entry", _ROOT)]
    _flatten(root, 0, entries)
    for entry in entries:
        entry.child = _sibling_tree(entry.children, entries)

    mini = bytearray()
    mini_fat: list[int] = []
    big: list[_Entry] = []
    for entry in entries[1:]:
        if entry.kind != _STREAM or not entry.data:
            continue
        entry.size = len(entry.data)
        if entry.size < _MINI_CUTOFF:
            first = len(mini_fat)
            count = -(-entry.size // _MINI_SECTOR)
            mini_fat.extend(range(first + 1, first + count))
            mini_fat.append(_END_OF_CHAIN)
            mini.extend(entry.data.ljust(count * _MINI_SECTOR, b"\0"))
            entry.start = first
        else:
            big.append(entry)

    directory_sectors = -(-len(entries) * 128 // _SECTOR)
    mini_fat_sectors = -(-len(mini_fat) * 4 // _SECTOR)
    mini_stream_sectors = -(-len(mini) // _SECTOR)
    big_sectors = [-(-len(entry.data) // _SECTOR) for entry in big]
    payload_sectors = directory_sectors + mini_fat_sectors + mini_stream_sectors + sum(big_sectors)
    fat_sectors = 1
    while fat_sectors * (_SECTOR // 4) < payload_sectors + fat_sectors:
        fat_sectors += 1
    if fat_sectors > 109:
        raise ValueError("the test writer keeps the FAT in the header's DIFAT (109 sectors)")

    fat: list[int] = [_FAT_SECTOR] * fat_sectors
    sectors: list[bytes] = []

    def place(data: bytes, count: int) -> int:
        first = fat_sectors + len(sectors)
        for index in range(count):
            fat.append(first + index + 1 if index < count - 1 else _END_OF_CHAIN)
            sectors.append(data[index * _SECTOR : (index + 1) * _SECTOR].ljust(_SECTOR, b"\0"))
        return first if count else _END_OF_CHAIN

    mini_fat_bytes = struct.pack(f"<{len(mini_fat)}I", *mini_fat)
    mini_fat_start = place(mini_fat_bytes, mini_fat_sectors)
    directory_start_index = len(sectors)
    place(b"", directory_sectors)  # filled in once every start sector is known
    entries[0].start = place(bytes(mini), mini_stream_sectors)
    entries[0].size = len(mini)
    for entry, count in zip(big, big_sectors, strict=True):
        entry.start = place(entry.data, count)

    directory = b"".join(_directory_entry(entry) for entry in entries)
    directory = directory.ljust(directory_sectors * _SECTOR, b"\0")
    for index in range(directory_sectors):
        sectors[directory_start_index + index] = directory[index * _SECTOR : (index + 1) * _SECTOR]
    # Unused directory slots must read as empty entries with no siblings.
    for slot in range(len(entries), directory_sectors * _SECTOR // 128):
        sector, offset = divmod(slot * 128, _SECTOR)
        block = bytearray(sectors[directory_start_index + sector])
        block[offset + 68 : offset + 80] = struct.pack("<3I", _NO_STREAM, _NO_STREAM, _NO_STREAM)
        sectors[directory_start_index + sector] = bytes(block)

    fat.extend([_FREE] * (fat_sectors * (_SECTOR // 4) - len(fat)))
    fat_bytes = struct.pack(f"<{len(fat)}I", *fat)
    difat = list(range(fat_sectors)) + [_FREE] * (109 - fat_sectors)
    header = struct.pack(
        "<8s16sHHHHH6sIIIIIIIII109I",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\0" * 16,
        0x003E,
        0x0003,
        0xFFFE,
        9,
        6,
        b"\0" * 6,
        0,
        fat_sectors,
        fat_sectors + directory_start_index,
        0,
        _MINI_CUTOFF,
        mini_fat_start,
        mini_fat_sectors,
        _END_OF_CHAIN,
        0,
        *difat,
    )
    return header + fat_bytes + b"".join(sectors)


def _flatten(storage: Storage, parent: int, entries: list[_Entry]) -> None:
    for name, data in storage.streams.items():
        entries[parent].children.append(len(entries))
        entries.append(_Entry(name, _STREAM, data))
    for name, child in storage.storages.items():
        index = len(entries)
        entries[parent].children.append(index)
        entries.append(_Entry(name, _STORAGE))
        _flatten(child, index, entries)


def _sibling_tree(children: list[int], entries: list[_Entry]) -> int:
    """Link siblings as a balanced binary tree in CFB name order; the root's id."""
    ordered = sorted(children, key=lambda i: (len(entries[i].name), entries[i].name.upper()))

    def build(low: int, high: int) -> int:
        if low >= high:
            return _NO_STREAM
        middle = (low + high) // 2
        node = entries[ordered[middle]]
        node.left = build(low, middle)
        node.right = build(middle + 1, high)
        return ordered[middle]

    return build(0, len(ordered))


def _directory_entry(entry: _Entry) -> bytes:
    name = entry.name.encode("utf-16-le")
    if len(name) > 62:
        raise ValueError(f"a compound-file name holds at most 31 characters: {entry.name!r}")
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        name,
        len(name) + 2,
        entry.kind,
        1,  # black
        entry.left,
        entry.right,
        entry.child,
        b"\0" * 16,
        0,
        0,
        0,
        entry.start,
        entry.size,
    )


# --- MS-OXMSG ------------------------------------------------------------------------------

PT_INT32 = 0x0003
PT_BOOLEAN = 0x000B
PT_TIME = 0x0040
PT_STRING = 0x001F
PT_BINARY = 0x0102
PT_OBJECT = 0x000D

PID_SUBJECT = 0x0037
PID_CLIENT_SUBMIT_TIME = 0x0039
PID_CONVERSATION_INDEX = 0x0071
PID_TRANSPORT_MESSAGE_HEADERS = 0x007D
PID_RECIPIENT_TYPE = 0x0C15
PID_SENDER_NAME = 0x0C1A
PID_SENDER_EMAIL_ADDRESS = 0x0C1F
PID_MESSAGE_CLASS = 0x001A
PID_BODY = 0x1000
PID_RTF_COMPRESSED = 0x1009
PID_HTML = 0x1013
PID_INTERNET_MESSAGE_ID = 0x1035
PID_INTERNET_REFERENCES = 0x1039
PID_IN_REPLY_TO_ID = 0x1042
PID_DISPLAY_NAME = 0x3001
PID_EMAIL_ADDRESS = 0x3003
PID_SMTP_ADDRESS = 0x39FE
PID_ATTACH_DATA = 0x3701
PID_ATTACH_FILENAME = 0x3704
PID_ATTACH_METHOD = 0x3705
PID_ATTACH_LONG_FILENAME = 0x3707
PID_ATTACH_MIME_TAG = 0x370E

RECIPIENT_TO, RECIPIENT_CC, RECIPIENT_BCC = 1, 2, 3
ATTACH_BY_VALUE, ATTACH_EMBEDDED_MESSAGE = 1, 5


@dataclass
class MsgAttachment:
    """An attachment: a file by value, or an embedded message."""

    name: str
    content: bytes = b""
    mime_type: str = "application/octet-stream"
    embedded: MsgMessage | None = None


@dataclass
class MsgMessage:
    """What the tests put in an MSG file."""

    subject: str
    sender: str
    to: list[str]
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    sent_at: dt.datetime | None = None
    body: str | None = None
    html: str | None = None
    rtf: str | None = None  # stored compressed (PidTagRtfCompressed)
    message_id: str | None = None  # with angle brackets, as sent
    in_reply_to: str | None = None
    references: str | None = None
    conversation_index: bytes | None = None
    transport_headers: str | None = None
    attachments: list[MsgAttachment] = field(default_factory=list)


def build_msg(message: MsgMessage) -> bytes:
    """The bytes of an MSG file holding ``message``."""
    return write_compound_file(_message_storage(message, top_level=True))


def _message_storage(message: MsgMessage, top_level: bool) -> Storage:
    properties = _Properties()
    properties.string(PID_MESSAGE_CLASS, "IPM.Note")
    properties.string(PID_SUBJECT, message.subject)
    properties.string(PID_SENDER_EMAIL_ADDRESS, message.sender)
    properties.string(PID_SENDER_NAME, message.sender.split("@")[0].title())
    if message.sent_at is not None:
        properties.time(PID_CLIENT_SUBMIT_TIME, message.sent_at)
    if message.body is not None:
        properties.string(PID_BODY, message.body)
    if message.html is not None:
        properties.binary(PID_HTML, message.html.encode("utf-8"))
    if message.rtf is not None:
        properties.binary(PID_RTF_COMPRESSED, compressed_rtf.compress(message.rtf.encode("ascii")))
    for pid, value in (
        (PID_INTERNET_MESSAGE_ID, message.message_id),
        (PID_IN_REPLY_TO_ID, message.in_reply_to),
        (PID_INTERNET_REFERENCES, message.references),
        (PID_TRANSPORT_MESSAGE_HEADERS, message.transport_headers),
    ):
        if value is not None:
            properties.string(pid, value)
    if message.conversation_index is not None:
        properties.binary(PID_CONVERSATION_INDEX, message.conversation_index)

    storage = Storage()
    recipients = [
        *((address, RECIPIENT_TO) for address in message.to),
        *((address, RECIPIENT_CC) for address in message.cc),
        *((address, RECIPIENT_BCC) for address in message.bcc),
    ]
    for number, (address, kind) in enumerate(recipients):
        recipient = _Properties()
        recipient.int32(PID_RECIPIENT_TYPE, kind)
        recipient.string(PID_DISPLAY_NAME, address.split("@")[0].title())
        recipient.string(PID_EMAIL_ADDRESS, address)
        recipient.string(PID_SMTP_ADDRESS, address)
        storage.storages[f"__recip_version1.0_#{number:08X}"] = recipient.storage(b"\0" * 8)
    for number, attachment in enumerate(message.attachments):
        storage.storages[f"__attach_version1.0_#{number:08X}"] = _attachment_storage(attachment)

    counts = struct.pack(
        "<8x4I",
        len(recipients),
        len(message.attachments),
        len(recipients),
        len(message.attachments),
    )
    header = counts + b"\0" * 8 if top_level else counts  # 32 bytes at the top, 24 embedded
    own = properties.storage(header)
    own.storages.update(storage.storages)
    if top_level:
        own.storages["__nameid_version1.0"] = Storage(
            streams={
                "__substg1.0_00020102": b"",
                "__substg1.0_00030102": b"",
                "__substg1.0_00040102": b"",
            }
        )
    return own


def _attachment_storage(attachment: MsgAttachment) -> Storage:
    properties = _Properties()
    properties.string(PID_ATTACH_LONG_FILENAME, attachment.name)
    properties.string(PID_ATTACH_FILENAME, attachment.name[:12])
    properties.string(PID_ATTACH_MIME_TAG, attachment.mime_type)
    if attachment.embedded is not None:
        properties.int32(PID_ATTACH_METHOD, ATTACH_EMBEDDED_MESSAGE)
        properties.object(PID_ATTACH_DATA)
        storage = properties.storage(b"\0" * 8)
        storage.storages[f"__substg1.0_{PID_ATTACH_DATA:04X}{PT_OBJECT:04X}"] = _message_storage(
            attachment.embedded, top_level=False
        )
        return storage
    properties.int32(PID_ATTACH_METHOD, ATTACH_BY_VALUE)
    properties.binary(PID_ATTACH_DATA, attachment.content)
    return properties.storage(b"\0" * 8)


class _Properties:
    """A property stream and its variable-length value streams, being built."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.streams: dict[str, bytes] = {}

    def _fixed(self, pid: int, ptype: int, value: bytes) -> None:
        self.entries.append(struct.pack("<HHI", ptype, pid, 0x06) + value.ljust(8, b"\0"))

    def _variable(self, pid: int, ptype: int, data: bytes, size: int) -> None:
        self.entries.append(struct.pack("<HHIII", ptype, pid, 0x06, size, 0))
        self.streams[f"__substg1.0_{pid:04X}{ptype:04X}"] = data

    def int32(self, pid: int, value: int) -> None:
        self._fixed(pid, PT_INT32, struct.pack("<I", value))

    def time(self, pid: int, value: dt.datetime) -> None:
        since = value.astimezone(dt.UTC) - dt.datetime(1601, 1, 1, tzinfo=dt.UTC)
        ticks = (since.days * 86_400 + since.seconds) * 10_000_000 + since.microseconds * 10
        self._fixed(pid, PT_TIME, struct.pack("<Q", ticks))

    def string(self, pid: int, value: str) -> None:
        data = value.encode("utf-16-le")
        self._variable(pid, PT_STRING, data, len(data) + 2)

    def binary(self, pid: int, value: bytes) -> None:
        self._variable(pid, PT_BINARY, value, len(value))

    def object(self, pid: int) -> None:
        self.entries.append(struct.pack("<HHIII", PT_OBJECT, pid, 0x06, 0xFFFFFFFF, 0))

    def storage(self, header: bytes) -> Storage:
        return Storage(
            streams={"__properties_version1.0": header + b"".join(self.entries), **self.streams}
        )


def from_email(message: EmailMessage) -> MsgMessage:
    """The MSG Outlook would save for a standard-library message (same fields, same parts)."""
    body_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    attachments = []
    for part in message.iter_attachments():
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()[0]
            attachments.append(
                MsgAttachment(part.get_filename() or "message.eml", embedded=from_email(inner))
            )
        else:
            content = part.get_payload(decode=True)
            attachments.append(
                MsgAttachment(part.get_filename() or "file", content, part.get_content_type())
            )
    date = message.get("Date")
    return MsgMessage(
        subject=str(message.get("Subject", "")),
        sender=email.utils.parseaddr(str(message["From"]))[1],
        to=[a for _, a in email.utils.getaddresses(message.get_all("To", []))],
        cc=[a for _, a in email.utils.getaddresses(message.get_all("Cc", []))],
        sent_at=email.utils.parsedate_to_datetime(str(date)) if date else None,
        body=body_part.get_content() if body_part is not None else None,
        html=html_part.get_content() if html_part is not None else None,
        message_id=str(message["Message-ID"]) if message["Message-ID"] else None,
        in_reply_to=str(message["In-Reply-To"]) if message["In-Reply-To"] else None,
        references=str(message["References"]) if message["References"] else None,
        attachments=attachments,
    )


def write_msg(path: Path, message: MsgMessage) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build_msg(message))
    return path
