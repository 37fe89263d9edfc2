"""E-mail: single messages (EML) and mailboxes (MBOX), with the standard library.

A message is a document: its headers and body become one ``part`` segment the
model reads, and each attachment (a forwarded message included) becomes a
child file the pipeline makes an item of its own family. A mailbox is a
container: each message becomes a child, a top-level document of its own
family, and the mailbox reports how many messages it held, how many were
written out and how many could not be.

Mailbox extraction checkpoints: each message is written as soon as it is read
and a manifest records how far it got, so an extraction killed half-way (time
limit, a crash, a worker lost) resumes where it stopped on the next attempt
instead of starting over.
"""

from __future__ import annotations

import email.errors
import email.policy
import json
import mailbox
import os
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser, BytesParser
from pathlib import Path
from typing import Any

from worker import email_identity, errors
from worker.config import LimitSettings, MediaSettings
from worker.email_identity import Attachment
from worker.extractors import html_text
from worker.extractors.base import (
    ChildRole,
    ExtractedChild,
    ExtractedSegment,
    Extraction,
    Extractor,
    SegmentKind,
)
from worker.extractors.registry import register

EML = "message/rfc822"
MBOX = "application/mbox"

_CHILDREN_DIR = "children"
_MANIFEST = "manifest.json"
_CHECKPOINT_EVERY = 200  # messages between manifest writes
_NAME_CHARS = 80


@register
class EmlExtractor(Extractor):
    """One RFC 5322 message: headers and body as text, attachments as children."""

    name = "eml"
    version = "1"
    media_types = frozenset({EML})

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        message = parse_message(source.read_bytes(), limits)
        return message_extraction(message, self.qualified_name(), EML, artifacts_dir)


def message_extraction(
    message: EmailMessage, extractor: str, media_type: str, artifacts_dir: Path
) -> Extraction:
    """One parsed message as an extraction: its text segment, attachments and identity.

    Shared by every format that holds one message (EML, Outlook MSG), so a
    message reads, threads and hashes the same whatever it was saved as.
    """
    body = body_text(message)
    attachments = read_attachments(message)
    fields = email_identity.read_fields(message, body, attachments)
    children = write_children(attachments, artifacts_dir)
    attachment_hashes = [email_identity.attachment_hash(a) for a in attachments]
    text = f"{fields.header_block()}\n\n{body}".strip()
    segment = ExtractedSegment(SegmentKind.part, 0, "message", text)
    identity = {
        **fields.as_metadata(),
        "email_hash": email_identity.normalised_email_hash(fields, attachment_hashes),
        "message_id_hash": email_identity.message_id_hash(fields.message_id_raw),
        "body_letters": email_identity.letters_and_digits(body),
        "attachment_hashes": attachment_hashes,
    }
    metadata: dict[str, Any] = {
        "title": fields.subject,
        "email": fields.as_metadata(),
        "attachments": [
            {"name": a.name, "content_type": a.content_type, "size_bytes": len(a.content)}
            for a in attachments
        ],
        "mime_defects": _defect_count(message),
    }
    return Extraction(extractor, media_type, [segment], metadata, children=children, email=identity)


@register
class MboxExtractor(Extractor):
    """A Unix mailbox: every message written out as a child, with counts and a checkpoint."""

    name = "mbox"
    version = "1"
    media_types = frozenset({MBOX})

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        try:
            box = mailbox.mbox(source, create=False)
        except (OSError, mailbox.Error) as exc:
            raise errors.CorruptFileError(f"cannot read the mailbox: {exc}") from exc
        try:
            return self._extract_messages(box, source, artifacts_dir, limits)
        finally:
            box.close()

    def _extract_messages(
        self, box: mailbox.mbox, source: Path, artifacts_dir: Path, limits: LimitSettings
    ) -> Extraction:
        try:
            keys = box.keys()
        except (OSError, mailbox.Error) as exc:
            raise errors.CorruptFileError(f"cannot read the mailbox: {exc}") from exc
        if len(keys) > limits.max_mailbox_messages:
            raise errors.LimitExceededError(
                f"the mailbox holds {len(keys)} messages; the limit is "
                f"{limits.max_mailbox_messages}"
            )
        children_dir = artifacts_dir / _CHILDREN_DIR
        children_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = _Checkpoint.load(children_dir / _MANIFEST, len(keys))
        resumed_at = checkpoint.next_index
        for index in range(checkpoint.next_index, len(keys)):
            entry = _write_message(box, keys[index], index, children_dir, limits)
            checkpoint.record(index, entry)
            if (index + 1) % _CHECKPOINT_EVERY == 0:
                checkpoint.save()
        checkpoint.next_index = len(keys)
        checkpoint.save()
        children = [
            ExtractedChild(
                entry["name"],
                entry["path"],
                entry["ordinal"],
                ChildRole.message,
                entry.get("email_hash"),
            )
            for entry in checkpoint.entries
            if entry.get("path")
        ]
        failures = [entry for entry in checkpoint.entries if not entry.get("path")]
        metadata: dict[str, Any] = {
            "messages": {
                "expected": len(keys),
                "extracted": len(children),
                "failed": len(failures),
            },
            "failed_messages": failures[:100],
        }
        if resumed_at:
            metadata["resumed_at_message"] = resumed_at + 1
        return Extraction(
            self.qualified_name(), MBOX, [], metadata, children=children, container=True
        )


class _Checkpoint:
    """How far a mailbox extraction got: one manifest entry per message read."""

    def __init__(self, path: Path, expected: int, entries: list[dict[str, Any]]) -> None:
        self.path = path
        self.expected = expected
        self.entries = entries
        self.next_index = len(entries)

    @classmethod
    def load(cls, path: Path, expected: int) -> _Checkpoint:
        """The saved checkpoint when it matches this mailbox, else a fresh one."""
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls(path, expected, [])
        entries = saved.get("entries") if isinstance(saved, dict) else None
        if saved.get("expected") != expected or not isinstance(entries, list):
            return cls(path, expected, [])
        # Only entries whose file is still there (a kill mid-write leaves a partial one).
        kept: list[dict[str, Any]] = []
        for entry in entries:
            if entry.get("path") and not (path.parent.parent / entry["path"]).is_file():
                break
            kept.append(entry)
        return cls(path, expected, kept)

    def record(self, index: int, entry: dict[str, Any]) -> None:
        del self.entries[index:]
        self.entries.append(entry)

    def save(self) -> None:
        staging = self.path.with_suffix(".tmp")
        staging.write_text(
            json.dumps({"expected": self.expected, "entries": self.entries}), encoding="utf-8"
        )
        os.replace(staging, self.path)


def _write_message(
    box: mailbox.mbox, key: str, index: int, children_dir: Path, limits: LimitSettings
) -> dict[str, Any]:
    """Write one mailbox message as its own file; the manifest entry that says how it went.

    The message is parsed here too, for its subject (its name in paths) and
    its normalised e-mail hash (what de-duplicates it); one that cannot be
    parsed is still written, and fails alone, with its code, as its own item.
    """
    ordinal = index + 1
    try:
        raw = box.get_bytes(key)
    except (OSError, mailbox.Error, ValueError) as exc:
        return {"ordinal": ordinal, "error": f"unreadable: {exc}"}
    if not raw.strip():
        return {"ordinal": ordinal, "error": "the message is empty"}
    target = children_dir / f"{ordinal:07d}.eml"
    target.write_bytes(raw)
    subject, email_hash = _identity_of(raw, limits)
    if len(subject) > _NAME_CHARS:
        subject = subject[:_NAME_CHARS] + "…"
    name = f"message {ordinal}" + (f": {subject}" if subject else "")
    entry = {"ordinal": ordinal, "name": name, "path": f"{_CHILDREN_DIR}/{target.name}"}
    if email_hash:
        entry["email_hash"] = email_hash
    return entry


def email_hash_of_file(path: Path, limits: LimitSettings) -> str | None:
    """The normalised e-mail hash of a message file, or None if it cannot be read as one.

    Submit de-duplicates a loose EML by it, so the same message submitted as
    a file and found in a mailbox is one document.
    """
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    return _identity_of(raw, limits)[1]


def _identity_of(raw: bytes, limits: LimitSettings) -> tuple[str, str | None]:
    """A message's subject and normalised e-mail hash; what can be read of them."""
    try:
        return message_identity(parse_message(raw, limits))
    except Exception:  # any failure here is the message's own, reported when it is extracted
        try:
            headers = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
            return email_identity.header_text(headers, "Subject"), None
        except Exception:
            return "", None


def message_identity(message: EmailMessage) -> tuple[str, str]:
    """A parsed message's subject and normalised e-mail hash."""
    attachments = read_attachments(message)
    fields = email_identity.read_fields(message, body_text(message), attachments)
    hashes = [email_identity.attachment_hash(a) for a in attachments]
    return fields.subject, email_identity.normalised_email_hash(fields, hashes)


def parse_message(raw: bytes, limits: LimitSettings) -> EmailMessage:
    """Parse a message, refusing one with more MIME parts than the limit."""
    if not raw.strip():
        raise errors.EmptyFileError("the message is empty")
    # Count boundaries before parsing: a 10,000-part message costs the parser
    # far more than this scan.
    if raw.count(b"\n--") > limits.max_email_parts * 2 + 2:
        _refuse_parts(raw, limits)
    try:
        message = BytesParser(policy=email.policy.default).parsebytes(raw)
    except (email.errors.MessageError, ValueError, LookupError) as exc:
        raise errors.CorruptFileError(f"cannot parse the message: {exc}") from exc
    parts = sum(1 for _ in message.walk())
    if parts > limits.max_email_parts:
        raise errors.LimitExceededError(
            f"the message has {parts} MIME parts; the limit is {limits.max_email_parts}"
        )
    assert isinstance(message, EmailMessage)
    return message


def _refuse_parts(raw: bytes, limits: LimitSettings) -> None:
    """Raise when the message's boundaries alone show more parts than allowed."""
    head = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    boundary = head.get_boundary()
    if boundary and raw.count(b"--" + boundary.encode("ascii", "replace")) > limits.max_email_parts:
        raise errors.LimitExceededError(
            f"the message has more than {limits.max_email_parts} MIME parts (the limit)"
        )


def body_text(message: EmailMessage) -> str:
    """The message's body as text: the plain part if any, else the HTML part read as text."""
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except (KeyError, TypeError, ValueError):
        part = None
    if part is None:
        if message.get_content_maintype() == "multipart":
            return ""
        part = message
    text = _part_text(part)
    if part.get_content_subtype() == "html":
        return html_text.html_to_text(text)
    return text.strip()


def _part_text(part: Message) -> str:
    """A text part's content, decoded with its charset or, failing that, leniently."""
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, KeyError, ValueError, AssertionError):
        pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("latin-1")


def read_attachments(message: EmailMessage) -> list[Attachment]:
    """Every attachment of the message, forwarded messages included, in order."""
    found: list[Attachment] = []
    try:
        parts = list(message.iter_attachments())
    except (KeyError, TypeError, ValueError):
        parts = []
    for number, part in enumerate(parts, start=1):
        content = _attachment_bytes(part)
        if content is None:
            continue
        name = _attachment_name(part, number)
        found.append(Attachment(name, content, part.get_content_type()))
    return found


def _attachment_bytes(part: Message) -> bytes | None:
    if part.get_content_type() == "message/rfc822":
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else payload
        if isinstance(inner, Message):
            return inner.as_bytes(policy=email.policy.default)
        return None
    if part.is_multipart():
        return part.as_bytes(policy=email.policy.default)
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else None


def _attachment_name(part: Message, number: int) -> str:
    try:
        name = part.get_filename()
    except (TypeError, ValueError, LookupError):
        name = None
    if name:
        return " ".join(str(name).replace("/", "_").replace("\\", "_").split())[:200]
    if part.get_content_type() == "message/rfc822":
        return f"forwarded message {number}.eml"
    return f"attachment {number}"


def write_children(attachments: list[Attachment], artifacts_dir: Path) -> list[ExtractedChild]:
    """Write each attachment to the artifacts directory as a child file."""
    if not attachments:
        return []
    children_dir = artifacts_dir / _CHILDREN_DIR
    children_dir.mkdir(parents=True, exist_ok=True)
    children = []
    for ordinal, attachment in enumerate(attachments, start=1):
        target = children_dir / f"{ordinal:05d}"
        target.write_bytes(attachment.content)
        children.append(
            ExtractedChild(
                f"attachment {ordinal}: {attachment.name}",
                f"{_CHILDREN_DIR}/{target.name}",
                ordinal,
                ChildRole.attachment,
            )
        )
    return children


def _defect_count(message: EmailMessage) -> int:
    return sum(len(getattr(part, "defects", ())) for part in message.walk())
