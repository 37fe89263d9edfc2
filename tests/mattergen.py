"""A small litigation matter for tests and the README: two custodians' mail and Office files.

``alice/inbox.mbox`` holds a four-message thread (an original with a Word
draft and a ZIP attached, a reply, a reply to that, a forward adding its own
attachment) and a "Team lunch" message that Erin also holds loose as
``erin/lunch.eml``; ``erin/plan.docx`` embeds a file; ``bob/settlement.msg``
is an Outlook message with an attached file and an attached (embedded)
message. So one submission shows containers, families, a duplicate across
custodians, a thread and inclusives, and every e-mail format but PST.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from tests import mailgen, msggen, officegen

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def build_matter(root: Path) -> Path:
    """Write the matter under ``root``; return ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    memo = officegen.docx_bytes(["Q3 draft: revenue flat."])
    nested = root / "scratch-notes.zip"
    with zipfile.ZipFile(nested, "w") as archive:
        archive.writestr("notes/first.txt", "First note.")
    thread = mailgen.forecast_thread(
        attachments=[
            ("draft.docx", memo, DOCX_TYPE),
            ("notes.zip", nested.read_bytes(), "application/zip"),
        ]
    )
    nested.unlink()
    mailgen.write_mbox(root / "alice" / "inbox.mbox", [*thread.messages(), mailgen.lunch_message()])
    mailgen.write_eml(root / "erin" / "lunch.eml", mailgen.lunch_message())
    officegen.write_docx(
        root / "erin" / "plan.docx", ["The plan."], embedded={"sheet.txt": b"embedded text"}
    )
    msggen.write_msg(root / "bob" / "settlement.msg", settlement_msg())
    return root


def settlement_msg() -> msggen.MsgMessage:
    """Bob forwards Carol the original settlement terms, with the signed copy attached."""
    bob, carol = f"bob@{mailgen.DOMAIN}", f"carol@{mailgen.DOMAIN}"
    original = msggen.MsgMessage(
        subject="Settlement terms",
        sender=carol,
        to=[bob],
        sent_at=mailgen.START + mailgen.dt.timedelta(days=3),
        body="Bob, the other side offers 10 in two payments.",
        message_id="<terms-1@example.test>",
    )
    return msggen.MsgMessage(
        subject="FW: Settlement terms",
        sender=bob,
        to=[carol],
        cc=[f"alice@{mailgen.DOMAIN}"],
        sent_at=mailgen.START + mailgen.dt.timedelta(days=4),
        body="Carol, signed copy attached; the offer is below.\n\n"
        + mailgen.quoted("Bob, the other side offers 10 in two payments."),
        message_id="<terms-2@example.test>",
        attachments=[
            msggen.MsgAttachment("signed.txt", b"Signed: 10 in two payments.\n", "text/plain"),
            msggen.MsgAttachment("Settlement terms.msg", embedded=original),
        ],
    )
