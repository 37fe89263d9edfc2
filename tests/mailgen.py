"""E-mail for tests, built with the standard library: threads, attachments, mailboxes, hostile mail.

A discovery set's mail has a shape the tests rely on: a thread with replies
and a forward (each quoting the one before), a message sent to two
custodians, attachments that are themselves containers (a ZIP, an Office
file), and the broken or hostile messages real collections hold.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import mailbox
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

DOMAIN = "example.test"
START = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)


@dataclass
class Draft:
    """One message to build: what a mail client would have sent."""

    sender: str
    to: list[str]
    subject: str
    body: str
    sent_at: dt.datetime
    message_id: str | None = None  # without brackets; None: no Message-ID header
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    thread_index: str | None = None
    cc: list[str] = field(default_factory=list)
    attachments: list[tuple[str, bytes, str]] = field(default_factory=list)  # name, bytes, type
    forwarded: EmailMessage | None = None  # attached as message/rfc822


def build(draft: Draft) -> EmailMessage:
    """The message a mail client would send for ``draft``."""
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = draft.sender
    message["To"] = ", ".join(draft.to)
    if draft.cc:
        message["Cc"] = ", ".join(draft.cc)
    message["Date"] = email.utils.format_datetime(draft.sent_at)
    message["Subject"] = draft.subject
    if draft.message_id:
        message["Message-ID"] = f"<{draft.message_id}>"
    if draft.in_reply_to:
        message["In-Reply-To"] = f"<{draft.in_reply_to}>"
    if draft.references:
        message["References"] = " ".join(f"<{ref}>" for ref in draft.references)
    if draft.thread_index:
        message["Thread-Index"] = draft.thread_index
    message.set_content(draft.body)
    for name, content, content_type in draft.attachments:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    if draft.forwarded is not None:
        message.add_attachment(draft.forwarded)
    return message


def quoted(body: str) -> str:
    """A reply's quote of ``body``, as mail clients write it."""
    return "\n".join(f"> {line}" for line in body.splitlines())


@dataclass
class Thread:
    """A thread of four messages: an original, a reply, a reply to that, a forward."""

    original: EmailMessage
    reply: EmailMessage
    second_reply: EmailMessage
    forward: EmailMessage

    def messages(self) -> list[EmailMessage]:
        return [self.original, self.reply, self.second_reply, self.forward]


def forecast_thread(attachments: list[tuple[str, bytes, str]] | None = None) -> Thread:
    """Alice asks about the Q3 forecast, Bob replies, Alice replies, Bob forwards it to Carol.

    Each reply quotes the whole message before it, so only the last reply and
    the forward (which adds its own attachment) are inclusive.
    """
    alice, bob, carol = (f"{name}@{DOMAIN}" for name in ("alice", "bob", "carol"))
    first_body = "Bob, can you send the Q3 forecast before Friday?\nThe board meets Monday."
    original = build(
        Draft(
            alice,
            [bob],
            "Q3 forecast",
            first_body,
            START,
            "q3-1@example.test",
            attachments=attachments or [],
        )
    )
    reply_body = f"Attached is the draft; revenue is flat.\n\n{quoted(first_body)}"
    reply = build(
        Draft(
            bob,
            [alice],
            "Re: Q3 forecast",
            reply_body,
            START + dt.timedelta(hours=2),
            "q3-2@example.test",
            in_reply_to="q3-1@example.test",
            references=["q3-1@example.test"],
        )
    )
    second_body = f"Thanks. Please keep this between us until Monday.\n\n{quoted(reply_body)}"
    second_reply = build(
        Draft(
            alice,
            [bob],
            "RE: Q3 forecast",
            second_body,
            START + dt.timedelta(hours=3),
            "q3-3@example.test",
            in_reply_to="q3-2@example.test",
            references=["q3-1@example.test", "q3-2@example.test"],
        )
    )
    forward = build(
        Draft(
            bob,
            [carol],
            "Fwd: Q3 forecast",
            f"Carol, see below and the notes attached.\n\n{quoted(second_body)}",
            START + dt.timedelta(days=1),
            "q3-4@example.test",
            in_reply_to="q3-3@example.test",
            references=["q3-1@example.test", "q3-2@example.test", "q3-3@example.test"],
            attachments=[("notes.txt", b"Forecast notes: flat revenue.\n", "text/plain")],
        )
    )
    return Thread(original, reply, second_reply, forward)


def lunch_message() -> EmailMessage:
    """A message outside any thread, sent to two people (so two custodians hold it)."""
    return build(
        Draft(
            f"dave@{DOMAIN}",
            [f"alice@{DOMAIN}", f"erin@{DOMAIN}"],
            "Team lunch",
            "Lunch is at noon on Thursday.",
            START + dt.timedelta(days=2),
            "lunch@example.test",
        )
    )


def write_eml(path: Path, message: EmailMessage) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(message))
    return path


def write_mbox(path: Path, messages: list[EmailMessage]) -> Path:
    """A Unix mailbox holding ``messages`` in order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.mbox(path, create=True)
    try:
        for message in messages:
            box.add(mailbox.mboxMessage(message))
        box.flush()
    finally:
        box.close()
    return path


def broken_mime() -> bytes:
    """A multipart message whose closing boundary never comes and whose base64 is damaged."""
    return (
        b"From: mallory@example.test\r\n"
        b"To: alice@example.test\r\n"
        b"Subject: broken\r\n"
        b"Date: Fri, 01 Mar 2024 09:00:00 +0000\r\n"
        b"Message-ID: <broken@example.test>\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\r\n\r\n'
        b"--XYZ\r\nContent-Type: text/plain\r\n\r\nThe body survives.\r\n"
        b"--XYZ\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="data.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not*base64===\r\n"
    )


def latin1_header() -> bytes:
    """A message whose Subject and From are raw ISO-8859-1 bytes, undeclared (as old clients sent)."""
    return (
        b"From: J\xfcrgen M\xfcller <juergen@example.test>\r\n"
        b"To: alice@example.test\r\n"
        b"Subject: Pr\xfcfbericht f\xfcr M\xe4rz\r\n"
        b"Date: Fri, 01 Mar 2024 10:00:00 +0000\r\n"
        b"Message-ID: <latin1@example.test>\r\n\r\n"
        b"Der Bericht folgt.\r\n"
    )


def many_parts(parts: int = 10_000) -> bytes:
    """A message of ``parts`` tiny MIME parts: cheap to send, costly to parse naively."""
    head = (
        b"From: mallory@example.test\r\nTo: alice@example.test\r\nSubject: parts\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
    )
    part = b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return head + part * parts + b"--B--\r\n"
