"""What one e-mail says about itself: headers, body text, and the hashes that identify it.

Pure functions over the standard library's parsed message, shared by the
e-mail extractors (which run in the sandbox) and by threading and
de-duplication (which run in the worker). Nothing here opens a file.

Two hashes identify a message, as litigation-support tools expect:

* the **normalised e-mail hash**: SHA-256 over this recipe, one field per
  line, UTF-8::

      from:<sender address, lower case>
      to:<every To, Cc and Bcc address, lower case, sorted, comma-separated>
      date:<Date header in UTC, to the second, ISO 8601; empty if none>
      subject:<Subject with runs of white space made one space>
      body:<the body text reduced to its letters and digits, case-folded>
      attachments:<"name:sha256" of each attachment, sorted, comma-separated>

  so the same message exported by two mail systems (different transport
  headers, line endings, MIME boundaries) hashes the same;
* the **EDRM Message-ID hash**: MD5 of the first Message-ID exactly as sent,
  angle brackets included.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from typing import Any

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|sv|vs|antw|tr)\s*(\[\d+\])?\s*:\s*)+", re.I)
_SUBJECT_TAG = re.compile(r"^\s*\[[^\]]{1,40}\]\s*")


@dataclass(frozen=True)
class Attachment:
    """One attachment as found in a message: its name and its bytes."""

    name: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class MessageFields:
    """The parts of a message that review, threading and de-duplication use."""

    sender: str | None
    to: list[str]
    cc: list[str]
    bcc: list[str]
    sent_at: dt.datetime | None
    subject: str
    message_id: str | None  # without angle brackets
    message_id_raw: str | None  # the first Message-ID as sent, brackets included
    in_reply_to: str | None
    references: list[str]  # oldest first, without brackets
    thread_index: str | None
    body: str
    attachments: list[Attachment] = field(default_factory=list)

    def header_block(self) -> str:
        """The headers a reviewer reads, as text for the model and for display."""
        lines = [f"From: {self.sender or ''}", f"To: {', '.join(self.to)}"]
        if self.cc:
            lines.append(f"Cc: {', '.join(self.cc)}")
        if self.bcc:
            lines.append(f"Bcc: {', '.join(self.bcc)}")
        lines.append(f"Date: {self.sent_at.isoformat() if self.sent_at else ''}")
        lines.append(f"Subject: {self.subject}")
        if self.attachments:
            lines.append(f"Attachments: {', '.join(a.name for a in self.attachments)}")
        return "\n".join(lines)

    def as_metadata(self) -> dict[str, Any]:
        """JSON-able headers, as stored on the item and in ``email_messages``."""
        return {
            "from": self.sender,
            "to": self.to,
            "cc": self.cc,
            "bcc": self.bcc,
            "date": self.sent_at.isoformat() if self.sent_at else None,
            "subject": self.subject,
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
            "references": self.references,
            "thread_index": self.thread_index,
        }


def header_text(message: Message, name: str) -> str:
    """A header's value as text, whatever is wrong with it (never raises)."""
    try:
        value = message.get(name)
    except Exception:  # the policy's header parser on a malformed value
        value = None
        for key, raw in message.raw_items():
            if key.lower() == name.lower():
                value = raw
                break
    if value is None:
        return ""
    return " ".join(str(value).split())


def addresses(message: Message, name: str) -> list[str]:
    """The e-mail addresses in a header, lower case, in order, each once."""
    values = []
    for raw in _all_values(message, name):
        for _display, address in email.utils.getaddresses([raw]):
            address = address.strip().lower()
            if address and address not in values:
                values.append(address)
    return values


def _all_values(message: Message, name: str) -> list[str]:
    try:
        return [str(value) for value in message.get_all(name) or []]
    except Exception:
        return [str(raw) for key, raw in message.raw_items() if key.lower() == name.lower()]


def message_ids(value: str) -> list[str]:
    """The Message-IDs in a header value (References holds several), without brackets."""
    return _MESSAGE_ID.findall(value)


def sent_at(message: Message) -> dt.datetime | None:
    """The Date header in UTC, or None when absent or unreadable."""
    raw = header_text(message, "Date")
    if not raw:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # RFC 5322 "-0000": the zone is unknown; take UTC
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def normalised_subject(subject: str) -> str:
    """The subject with reply/forward prefixes and list tags removed, case-folded."""
    previous = None
    text = subject
    while previous != text:
        previous = text
        text = _SUBJECT_TAG.sub("", _REPLY_PREFIX.sub("", text))
    return " ".join(text.split()).casefold()


def letters_and_digits(text: str) -> str:
    """``text`` reduced to its letters and digits, case-folded: what two copies share."""
    return "".join(character for character in text.casefold() if character.isalnum())


def normalised_email_hash(fields: MessageFields, attachment_hashes: Iterable[str]) -> str:
    """SHA-256 of the recipe in this module's docstring."""
    recipients = sorted({*fields.to, *fields.cc, *fields.bcc})
    lines = [
        f"from:{(fields.sender or '').lower()}",
        f"to:{','.join(recipients)}",
        f"date:{fields.sent_at.strftime('%Y-%m-%dT%H:%M:%SZ') if fields.sent_at else ''}",
        f"subject:{' '.join(fields.subject.split())}",
        f"body:{letters_and_digits(fields.body)}",
        f"attachments:{','.join(sorted(attachment_hashes))}",
    ]
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()


def message_id_hash(message_id_raw: str | None) -> str | None:
    """The EDRM Message-ID hash: MD5 of the first Message-ID with its angle brackets."""
    if not message_id_raw:
        return None
    return hashlib.md5(
        message_id_raw.encode("utf-8", "surrogatepass"), usedforsecurity=False
    ).hexdigest()


def attachment_hash(attachment: Attachment) -> str:
    """``name:sha256`` of one attachment, as the e-mail hash recipe lists it."""
    return f"{attachment.name}:{hashlib.sha256(attachment.content).hexdigest()}"


def first_message_id(message: Message) -> tuple[str | None, str | None]:
    """The first Message-ID without and with its angle brackets."""
    raw = header_text(message, "Message-ID")
    found = _MESSAGE_ID.search(raw)
    if found is None:
        return (raw or None), (raw or None)
    return found.group(1), found.group(0)


def read_fields(message: EmailMessage, body: str, attachments: list[Attachment]) -> MessageFields:
    """The fields of a parsed message whose body and attachments were read already."""
    message_id, message_id_raw = first_message_id(message)
    in_reply = message_ids(header_text(message, "In-Reply-To"))
    senders = addresses(message, "From")
    return MessageFields(
        sender=senders[0] if senders else (header_text(message, "From") or None),
        to=addresses(message, "To"),
        cc=addresses(message, "Cc"),
        bcc=addresses(message, "Bcc"),
        sent_at=sent_at(message),
        subject=header_text(message, "Subject"),
        message_id=message_id,
        message_id_raw=message_id_raw,
        in_reply_to=in_reply[0] if in_reply else None,
        references=message_ids(header_text(message, "References")),
        thread_index=header_text(message, "Thread-Index") or None,
        body=body,
        attachments=attachments,
    )
