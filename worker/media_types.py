"""Decide what a file is from its bytes.

Content beats the name: originals live in the content store under their hash,
with no extension at all, and what users submit is often misnamed (a scan saved
as ``.txt``, an e-mail attachment called ``document``, a PDF renamed to dodge a
filter). An extension is a claim made by whoever named the file; the first
bytes are what the parser will actually see. So detection reads the head of
the file and matches it against a small table of signatures, and the detected
type alone picks the extractor.

Only the types below are recognised; most have no extractor yet, and
recognising them still lets a report say "video/mp4, unsupported" rather than
"unknown bytes".
"""

from __future__ import annotations

import codecs
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from worker import errors

PDF = "application/pdf"
PLAIN_TEXT = "text/plain"
ZIP = "application/zip"
EML = "message/rfc822"
MBOX = "application/mbox"
HTML = "text/html"
RTF = "application/rtf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
MSG = "application/vnd.ms-outlook"
PST = "application/vnd.ms-outlook-pst"  # a PST or OST mail store ("!BDN")
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
OLE = "application/x-ole-storage"  # a compound file none of the types below
# An Office file saved with a password: OOXML inside an encrypted OLE package.
ENCRYPTED_OFFICE = "application/x-encrypted-office"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"
DICOM = "application/dicom"
UNKNOWN = "application/octet-stream"
# What is recorded for a zero-byte file (the name file(1) gives it). The
# detector never returns it: it raises EmptyFileError, since no extractor could
# read such a file; whoever records a type for one records this.
EMPTY = "inode/x-empty"

# Enough for every signature below, and for judging whether a file is text.
_HEAD_BYTES = 64 * 1024
# Acrobat accepts a PDF header anywhere in the first KiB (some generators and
# mail gateways prepend junk), and so does MuPDF.
_PDF_HEADER_WINDOW = 1024


@dataclass(frozen=True)
class _Signature:
    """``magic`` found at ``offset`` means ``media_type``."""

    offset: int
    magic: bytes
    media_type: str


# Fixed-offset signatures, checked before the loose "%PDF- somewhere in the
# first KiB" rule: a ZIP that stores a PDF uncompressed carries "%PDF-" in its
# first KiB, but it is still a ZIP.
_SIGNATURES: tuple[_Signature, ...] = (
    # First: "DICM" at 128 is far more specific than any 4 bytes at 0, and the
    # 128-byte preamble before it may legally hold a TIFF header (PS3.10 7.1).
    _Signature(128, b"DICM", DICOM),
    _Signature(0, b"%PDF-", PDF),
    _Signature(0, b"\x89PNG\r\n\x1a\n", "image/png"),
    _Signature(0, b"\xff\xd8\xff", "image/jpeg"),
    _Signature(0, b"GIF87a", "image/gif"),
    _Signature(0, b"GIF89a", "image/gif"),
    _Signature(0, b"II*\x00", "image/tiff"),
    _Signature(0, b"MM\x00*", "image/tiff"),
    _Signature(0, b"PK\x03\x04", ZIP),
    _Signature(0, b"PK\x05\x06", ZIP),  # an empty archive
    _Signature(0, b"PK\x07\x08", ZIP),  # a spanned archive
    _Signature(0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", OLE),  # a compound file
    _Signature(0, b"{\\rtf", RTF),
    _Signature(0, b"!BDN", PST),
    _Signature(0, b"OggS", "audio/ogg"),
    _Signature(0, b"fLaC", "audio/flac"),
    _Signature(0, b"ID3", "audio/mpeg"),
    _Signature(0, b"FLV\x01", "video/x-flv"),
    # The ASF header object's GUID: Windows Media video and audio.
    _Signature(0, bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"), "video/x-ms-asf"),
    _Signature(0, b"\x00\x00\x01\xba", "video/mpeg"),  # an MPEG program stream pack header
)

# RIFF is a container: the form type at offset 8 says what it holds.
_RIFF_FORMS: dict[bytes, str] = {
    b"WEBP": "image/webp",
    b"WAVE": "audio/wav",
    b"AVI ": "video/x-msvideo",
}

# IFF, RIFF's big-endian ancestor, is laid out the same way; Apple's AIFF uses it.
_IFF_FORMS: dict[bytes, str] = {
    b"AIFF": "audio/x-aiff",
    b"AIFC": "audio/x-aiff",
}

# An MPEG transport stream is 188-byte packets, each starting with the sync
# byte 0x47; one 0x47 is common in any file, several at that spacing are not.
_TS_PACKET_BYTES = 188
_TS_PACKETS_CHECKED = 4

# ISO base media files ("ftyp" box at offset 4) share one layout; the major
# brand after it tells a QuickTime movie or an audio-only file from an MP4.
_FTYP_BRANDS: dict[bytes, str] = {
    b"qt  ": "video/quicktime",
    b"M4A ": "audio/mp4",
    b"M4B ": "audio/mp4",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"mif1": "image/heic",
    b"avif": "image/avif",
}
_FTYP_DEFAULT = "video/mp4"

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # Matroska and WebM both start with EBML


def detect_media_type(path: Path) -> str:
    """The media type of ``path``, judged by its content alone.

    Returns ``application/octet-stream`` for anything not recognised. Raises
    :class:`worker.errors.EmptyFileError` for a zero-byte file, which no
    extractor could read whatever its name.
    """
    with path.open("rb") as stream:
        head = stream.read(_HEAD_BYTES)
        at_end = stream.read(1) == b""
    if not head:
        raise errors.EmptyFileError(f"{path.name} is empty (zero bytes)")
    media_type = _media_type_of_head(head, whole_file=at_end)
    if media_type == ZIP:
        return _zip_package_type(path, head)
    if media_type == OLE:
        return _compound_file_type(path)
    return media_type


def _media_type_of_head(head: bytes, *, whole_file: bool) -> str:
    """Match the first bytes of a file; ``whole_file`` says nothing follows them."""
    for signature in _SIGNATURES:
        if head[signature.offset : signature.offset + len(signature.magic)] == signature.magic:
            return signature.media_type
    if head[:4] == b"RIFF" and head[8:12] in _RIFF_FORMS:
        return _RIFF_FORMS[head[8:12]]
    if head[:4] == b"FORM" and head[8:12] in _IFF_FORMS:
        return _IFF_FORMS[head[8:12]]
    if head[4:8] == b"ftyp":
        return _FTYP_BRANDS.get(head[8:12], _FTYP_DEFAULT)
    if head[:4] == _EBML_MAGIC:
        # The DocType element sits in the EBML header, well inside 64 bytes.
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if b"%PDF-" in head[:_PDF_HEADER_WINDOW]:
        return PDF
    if _is_mpeg_audio_frame(head):
        return "audio/mpeg"
    mail_type = _mail_type(head)
    if mail_type is not None:
        return mail_type
    if _looks_like_html(head):
        return HTML
    if _is_utf8_text(head, whole_file=whole_file):
        return PLAIN_TEXT
    if _is_mpeg_transport_stream(head):
        return "video/mp2t"
    return UNKNOWN


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MP3 without an ID3 tag starts straight with an MPEG audio frame header.

    11 sync bits, then a version and a layer that are not the reserved values
    (the reserved layer 00 is also what AAC's ADTS uses, which is not MP3).
    """
    if len(head) < 2 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version_bits = (head[1] >> 3) & 0b11
    layer_bits = (head[1] >> 1) & 0b11
    return version_bits != 0b01 and layer_bits != 0b00


def _is_mpeg_transport_stream(head: bytes) -> bool:
    """The first few 188-byte packets all start with the sync byte 0x47."""
    if len(head) < _TS_PACKET_BYTES * _TS_PACKETS_CHECKED:
        return False
    return all(head[packet * _TS_PACKET_BYTES] == 0x47 for packet in range(_TS_PACKETS_CHECKED))


def _is_utf8_text(head: bytes, *, whole_file: bool) -> bool:
    """Valid UTF-8 without NUL bytes: what every text editor writes today.

    When the head is only the start of the file it may end inside a multi-byte
    character, so an incomplete last character is not held against it.
    """
    if b"\x00" in head:
        return False
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(head, final=whole_file)
    except UnicodeDecodeError:
        return False
    return True


# Header fields that only a message carries, at least two of which a real one starts with.
_MESSAGE_HEADERS = frozenset(
    {
        b"from",
        b"to",
        b"cc",
        b"date",
        b"subject",
        b"message-id",
        b"mime-version",
        b"received",
        b"return-path",
        b"delivered-to",
        b"reply-to",
        b"in-reply-to",
        b"references",
    }
)
_IDENTIFYING_HEADERS = frozenset({b"from", b"date", b"subject", b"message-id"})
_HEADER_LINE = re.compile(rb"^([A-Za-z0-9][A-Za-z0-9-]{0,76}):")


def _mail_type(head: bytes) -> str | None:
    """A mailbox (``From `` separator line first) or one message (header lines first)."""
    text = head.lstrip(b"\r\n")
    lines = text.split(b"\n", 40)[:40]
    if lines and lines[0].startswith(b"From ") and _header_names(lines[1:]):
        return MBOX
    names = _header_names(lines)
    if len(names & _MESSAGE_HEADERS) >= 2 and names & _IDENTIFYING_HEADERS:
        return EML
    return None


def _header_names(lines: list[bytes]) -> set[bytes]:
    """The names of the header lines at the start of ``lines``, up to the first blank one."""
    names: set[bytes] = set()
    for line in lines:
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t") and names:
            continue  # a folded continuation line
        match = _HEADER_LINE.match(line)
        if match is None:
            return set()
        names.add(match.group(1).lower())
    return names


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:64].lower()
    return start.startswith((b"<!doctype html", b"<html"))


# The part that names an Office Open XML package's kind.
_OOXML_MAIN_PARTS: tuple[tuple[str, str], ...] = (
    ("word/document.xml", DOCX),
    ("xl/workbook.xml", XLSX),
    ("ppt/presentation.xml", PPTX),
)
_ODF_TYPES = {
    b"application/vnd.oasis.opendocument.text": ODT,
    b"application/vnd.oasis.opendocument.spreadsheet": ODS,
    b"application/vnd.oasis.opendocument.presentation": ODP,
}


def _zip_package_type(path: Path, head: bytes) -> str:
    """A ZIP that is an Office or OpenDocument file, by its parts; else a plain ZIP.

    OpenDocument stores its type uncompressed as the first member, ``mimetype``;
    Office Open XML is told by its main part in the central directory (read
    without decompressing anything).
    """
    if head[30:38] == b"mimetype":
        for declared, media_type in _ODF_TYPES.items():
            if head[38 : 38 + len(declared)] == declared:
                return media_type
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        return ZIP
    if "[Content_Types].xml" in names:
        for part, media_type in _OOXML_MAIN_PARTS:
            if part in names:
                return media_type
    return ZIP


def _compound_file_type(path: Path) -> str:
    """What an OLE compound file holds, by its stream names (olefile reads only the directory)."""
    import olefile  # BSD; installed with msoffcrypto-tool and python-oxmsg

    try:
        with olefile.OleFileIO(str(path)) as compound:
            streams = {"/".join(entry) for entry in compound.listdir(streams=True, storages=True)}
    except Exception:  # olefile raises bare OSError, ValueError, struct errors…
        return OLE
    if "EncryptionInfo" in streams and "EncryptedPackage" in streams:
        return ENCRYPTED_OFFICE
    if any(name.startswith("__substg1.0_") for name in streams):
        return MSG
    if "WordDocument" in streams:
        return DOC
    if "Workbook" in streams or "Book" in streams:
        return XLS
    if "PowerPoint Document" in streams:
        return PPT
    return OLE
