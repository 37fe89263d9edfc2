"""Outlook MSG: one message in a compound file, read with python-oxmsg (MIT).

The message is rebuilt as a standard-library e-mail message — headers from
its MAPI properties, falling back to the transport headers Outlook kept of a
received message; the plain body, the HTML body, or the compressed RTF body
decompressed with ``compressed-rtf`` (MIT) and read as text; attachments by
value as files; embedded messages as attached messages — and then goes
through exactly the path an EML takes. So an MSG reads, threads and hashes
like the same message saved as EML, and the two de-duplicate.

python-oxmsg reads the storage and decodes property values; which
properties make up a message, and embedded messages (which python-oxmsg's
``Message`` does not open), are read here from its storage objects.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.policy
import email.utils
from email.message import EmailMessage
from email.parser import HeaderParser
from pathlib import Path

import compressed_rtf  # MIT
import olefile  # BSD
from oxmsg.properties import Properties
from oxmsg.storage import Storage
from striprtf.striprtf import rtf_to_text  # BSD

from worker import errors
from worker.config import LimitSettings, MediaSettings
from worker.extractors.base import Extraction, Extractor
from worker.extractors.email import message_extraction, message_identity
from worker.extractors.registry import register
from worker.media_types import MSG

# MAPI property ids (MS-OXPROPS) this extractor reads.
_SUBJECT = 0x0037
_CLIENT_SUBMIT_TIME = 0x0039
_CONVERSATION_INDEX = 0x0071
_TRANSPORT_MESSAGE_HEADERS = 0x007D
_RECIPIENT_TYPE = 0x0C15
_SENDER_NAME = 0x0C1A
_SENDER_EMAIL_ADDRESS = 0x0C1F
_SENDER_SMTP_ADDRESS = 0x5D01
_BODY = 0x1000
_RTF_COMPRESSED = 0x1009
_HTML = 0x1013
_INTERNET_MESSAGE_ID = 0x1035
_INTERNET_REFERENCES = 0x1039
_IN_REPLY_TO_ID = 0x1042
_DISPLAY_NAME = 0x3001
_EMAIL_ADDRESS = 0x3003
_SMTP_ADDRESS = 0x39FE
_ATTACH_DATA = 0x3701
_ATTACH_FILENAME = 0x3704
_ATTACH_METHOD = 0x3705
_ATTACH_LONG_FILENAME = 0x3707
_ATTACH_MIME_TAG = 0x370E

# Where 16-byte property entries start in each object's properties stream (MS-OXMSG 2.4).
_TOP_LEVEL_HEADER = 32
_EMBEDDED_HEADER = 24
_CHILD_HEADER = 8  # recipients and attachments

_EMBEDDED_STORAGE = "__substg1.0_3701000D"
_ATTACH_EMBEDDED_MESSAGE = 5
_RECIPIENT_HEADERS = {1: "To", 2: "Cc", 3: "Bcc"}


@register
class MsgExtractor(Extractor):
    """An Outlook message: read as the equivalent RFC 5322 message, attachments as children."""

    name = "msg"
    version = "1"
    media_types = frozenset({MSG})

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        message = read_msg(source, limits)
        return message_extraction(message, self.qualified_name(), MSG, artifacts_dir)


def email_hash_of_file(path: Path, limits: LimitSettings) -> str | None:
    """The normalised e-mail hash of an MSG file, or None if it cannot be read as one."""
    try:
        return message_identity(read_msg(path, limits))[1]
    except Exception:  # the file's own failure, reported with its code when it is extracted
        return None


def read_msg(source: Path, limits: LimitSettings) -> EmailMessage:
    """The MSG file at ``source`` as a standard-library message."""
    try:
        with olefile.OleFileIO(str(source)) as compound:
            storage = Storage.from_ole(compound)
    except RecursionError as exc:
        raise errors.CorruptFileError("the MSG file's storages nest without end") from exc
    except Exception as exc:  # olefile raises OSError, ValueError, struct.error, IndexError…
        raise errors.CorruptFileError(f"cannot read the MSG file: {exc}") from exc
    try:
        message = _message_of(storage, _TOP_LEVEL_HEADER, depth=0, limits=limits)
    except errors.SieveError:
        raise
    except Exception as exc:  # a property the file declares but does not hold, bad lengths…
        raise errors.CorruptFileError(f"cannot read the MSG message: {exc}") from exc
    parts = sum(1 for _ in message.walk())
    if parts > limits.max_email_parts:
        raise errors.LimitExceededError(
            f"the message has {parts} parts; the limit is {limits.max_email_parts}"
        )
    return message


def _message_of(
    storage: Storage, header_size: int, depth: int, limits: LimitSettings
) -> EmailMessage:
    """One message object (top level or embedded) of an MSG storage."""
    if depth > limits.max_archive_depth:
        raise errors.LimitExceededError(
            f"embedded messages nest deeper than {limits.max_archive_depth} levels"
        )
    properties = Properties(storage, properties_header_offset=header_size)
    transport = HeaderParser(policy=email.policy.default).parsestr(
        _text(properties.str_prop_value(_TRANSPORT_MESSAGE_HEADERS), keep_lines=True)
    )
    message = EmailMessage(policy=email.policy.default)
    _set(message, "From", _sender(properties) or _header(transport, "From"))
    recipients = _recipients(storage)
    for header in ("To", "Cc", "Bcc"):
        _set(message, header, ", ".join(recipients.get(header, [])) or _header(transport, header))
    _set(message, "Date", _date(properties) or _header(transport, "Date"))
    _set(message, "Subject", _text(properties.str_prop_value(_SUBJECT)))
    for header, pid in (
        ("Message-ID", _INTERNET_MESSAGE_ID),
        ("In-Reply-To", _IN_REPLY_TO_ID),
        ("References", _INTERNET_REFERENCES),
    ):
        _set(message, header, _text(properties.str_prop_value(pid)) or _header(transport, header))
    index = properties.binary_prop_value(_CONVERSATION_INDEX)
    thread_index = base64.b64encode(index).decode("ascii") if index else None
    _set(message, "Thread-Index", thread_index or _header(transport, "Thread-Index"))
    _set_body(message, properties)
    for number, attachment in enumerate(_child_storages(storage, "__attach_version1.0_#"), 1):
        _attach(message, attachment, number, depth, limits)
    return message


def _sender(properties: Properties) -> str:
    address = _text(properties.str_prop_value(_SENDER_SMTP_ADDRESS))
    if "@" not in address:
        address = _text(properties.str_prop_value(_SENDER_EMAIL_ADDRESS))
    if "@" not in address:
        return ""
    name = _text(properties.str_prop_value(_SENDER_NAME))
    return email.utils.formataddr((name, address)) if name else address


def _recipients(storage: Storage) -> dict[str, list[str]]:
    """Recipient addresses by header (To, Cc, Bcc), in the file's order."""
    found: dict[str, list[str]] = {}
    for child in _child_storages(storage, "__recip_version1.0_#"):
        properties = Properties(child, properties_header_offset=_CHILD_HEADER)
        address = _text(properties.str_prop_value(_SMTP_ADDRESS))
        if "@" not in address:
            address = _text(properties.str_prop_value(_EMAIL_ADDRESS))
        if not address:
            continue
        header = _RECIPIENT_HEADERS.get(properties.int_prop_value(_RECIPIENT_TYPE) or 1, "To")
        name = _text(properties.str_prop_value(_DISPLAY_NAME))
        found.setdefault(header, []).append(
            email.utils.formataddr((name, address)) if name and name != address else address
        )
    return found


def _date(properties: Properties) -> str:
    sent = properties.date_prop_value(_CLIENT_SUBMIT_TIME)
    if not isinstance(sent, dt.datetime):
        return ""
    return email.utils.format_datetime(sent.astimezone(dt.UTC))


def _set_body(message: EmailMessage, properties: Properties) -> None:
    """The plain body, with the HTML body as its alternative; the RTF body when neither."""
    plain = _text(properties.str_prop_value(_BODY), keep_lines=True)
    html = _html(properties)
    if not plain and not html:
        plain = _rtf_text(properties.binary_prop_value(_RTF_COMPRESSED))
    if plain:
        message.set_content(plain)
        if html:
            message.add_alternative(html, subtype="html")
    elif html:
        message.set_content(html, subtype="html")
    else:
        message.set_content("")


def _html(properties: Properties) -> str:
    raw = properties.binary_prop_value(_HTML)
    if raw:
        try:
            return raw.decode(properties.body_encoding, "replace")
        except LookupError:
            return raw.decode("utf-8", "replace")
    return ""


def _rtf_text(compressed: bytes | None) -> str:
    """The text of a compressed RTF body (MS-OXRTFCP), or '' when it cannot be read."""
    if not compressed:
        return ""
    try:
        rtf = compressed_rtf.decompress(compressed)
    except Exception:  # a damaged RTF body loses only itself; the rest of the message stays
        return ""
    return rtf_to_text(rtf.decode("latin-1"), errors="ignore").strip()


def _attach(
    message: EmailMessage, storage: Storage, number: int, depth: int, limits: LimitSettings
) -> None:
    properties = Properties(storage, properties_header_offset=_CHILD_HEADER)
    name = (
        _text(properties.str_prop_value(_ATTACH_LONG_FILENAME))
        or _text(properties.str_prop_value(_ATTACH_FILENAME))
        or _text(properties.str_prop_value(_DISPLAY_NAME))
    )
    if properties.int_prop_value(_ATTACH_METHOD) == _ATTACH_EMBEDDED_MESSAGE:
        embedded = next(
            (s for s in storage.storages if s.name == _EMBEDDED_STORAGE),
            None,
        )
        if embedded is not None:
            inner = _message_of(embedded, _EMBEDDED_HEADER, depth + 1, limits)
            message.add_attachment(inner, filename=name or f"attached message {number}.eml")
        return
    content = properties.binary_prop_value(_ATTACH_DATA)
    if content is None:  # attached by reference: nothing in the file to read
        return
    mime = _text(properties.str_prop_value(_ATTACH_MIME_TAG)) or "application/octet-stream"
    maintype, _, subtype = mime.partition("/")
    if not subtype or maintype in {"multipart", "message"}:
        maintype, subtype = "application", "octet-stream"
    message.add_attachment(
        content, maintype=maintype, subtype=subtype, filename=name or f"attachment {number}"
    )


def _child_storages(storage: Storage, prefix: str) -> list[Storage]:
    children = [s for s in storage.storages if s.name.startswith(prefix)]
    return sorted(children, key=lambda s: s.name)


def _set(message: EmailMessage, header: str, value: str | None) -> None:
    """Set a header from a property, dropping a value the header cannot hold."""
    value = " ".join((value or "").split())  # no line breaks: they would inject headers
    if not value:
        return
    try:
        message[header] = value
    except (ValueError, TypeError, IndexError):
        message[header] = value.encode("ascii", "replace").decode("ascii")


def _header(headers: EmailMessage, name: str) -> str:
    try:
        return str(headers.get(name) or "")
    except Exception:  # a malformed transport header loses only itself
        return ""


def _text(value: str | None, keep_lines: bool = False) -> str:
    if not value:
        return ""
    value = value.replace("\x00", "")
    return value.strip() if keep_lines else " ".join(value.split())
