"""Outlook MSG: detection, headers from MAPI properties, bodies (plain, HTML, RTF), attachments,
embedded messages, and the same identity as the message saved as EML.

The MSG files are written by ``tests/msggen.py`` (no library writes MSG);
python-oxmsg's own ``Message`` reads them too, so the fixture is checked by a
reader that is not Sieve's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from oxmsg import Message

from tests import mailgen, msggen
from worker import errors, media_types
from worker.config import LimitSettings
from worker.extractors.base import ChildRole
from worker.extractors.email import EmlExtractor
from worker.extractors.msg import MsgExtractor, email_hash_of_file

LIMITS = LimitSettings(sandbox=False)
SENT = dt.datetime(2024, 3, 4, 15, 30, 12, tzinfo=dt.UTC)


def _message(**changes: object) -> msggen.MsgMessage:
    fields: dict[str, object] = {
        "subject": "Settlement terms",
        "sender": "frank@example.test",
        "to": ["grace@example.test", "Heidi@Example.test"],
        "cc": ["ivan@example.test"],
        "bcc": ["judy@example.test"],
        "sent_at": SENT,
        "body": "Grace, the terms are attached.\nDo not forward.",
        "message_id": "<terms-1@example.test>",
        "in_reply_to": "<terms-0@example.test>",
        "references": "<terms-0@example.test>",
        "conversation_index": bytes(range(22)),
        "attachments": [msggen.MsgAttachment("terms.txt", b"Pay 10 in 2 parts.\n", "text/plain")],
    }
    fields.update(changes)
    return msggen.MsgMessage(**fields)  # type: ignore[arg-type]


def _extract(tmp_path: Path, message: msggen.MsgMessage, name: str = "mail.msg"):
    source = msggen.write_msg(tmp_path / name, message)
    return MsgExtractor().extract(source, tmp_path / f"{name}.artifacts", LIMITS)


def test_an_msg_written_by_the_fixture_is_read_by_python_oxmsg_itself(tmp_path: Path) -> None:
    path = msggen.write_msg(tmp_path / "mail.msg", _message())
    message = Message.load(str(path))
    assert message.subject == "Settlement terms"
    assert [r.email_address for r in message.recipients][:2] == [
        "grace@example.test",
        "Heidi@Example.test",
    ]
    assert message.attachments[0].file_name == "terms.txt"
    assert message.attachments[0].file_bytes == b"Pay 10 in 2 parts.\n"


def test_an_msg_is_detected_by_its_storages_not_its_name(tmp_path: Path) -> None:
    path = msggen.write_msg(tmp_path / "no-extension", _message())
    assert media_types.detect_media_type(path) == media_types.MSG


def test_headers_body_and_attachments_come_from_the_mapi_properties(tmp_path: Path) -> None:
    extraction = _extract(tmp_path, _message())
    text = extraction.segments[0].text
    assert "From: frank@example.test" in text
    assert "To: grace@example.test, heidi@example.test" in text
    assert "Cc: ivan@example.test" in text and "Bcc: judy@example.test" in text
    assert "Subject: Settlement terms" in text and "Do not forward." in text
    identity = extraction.email
    assert identity is not None
    assert identity["date"] == "2024-03-04T15:30:12+00:00"
    assert identity["message_id"] == "terms-1@example.test"
    assert identity["in_reply_to"] == "terms-0@example.test"
    assert identity["references"] == ["terms-0@example.test"]
    assert identity["thread_index"] == "AAECAwQFBgcICQoLDA0ODxAREhMUFQ=="
    assert identity["message_id_hash"] == hashlib.md5(b"<terms-1@example.test>").hexdigest()
    assert [(c.name, c.role) for c in extraction.children] == [
        ("attachment 1: terms.txt", ChildRole.attachment)
    ]
    child = tmp_path / "mail.msg.artifacts" / extraction.children[0].artifact_path
    assert child.read_bytes() == b"Pay 10 in 2 parts.\n"


def test_an_msg_and_the_same_message_as_eml_have_one_email_hash(tmp_path: Path) -> None:
    """What de-duplicates a message Outlook saved against the copy in a mailbox."""
    thread = mailgen.forecast_thread(attachments=[("draft.txt", b"flat\n", "text/plain")])
    for message in (thread.original, thread.reply):
        eml = tmp_path / "copy.eml"
        eml.write_bytes(bytes(message))
        from_eml = EmlExtractor().extract(eml, tmp_path / "eml.artifacts", LIMITS)
        msg_path = msggen.write_msg(tmp_path / "copy.msg", msggen.from_email(message))
        from_msg = MsgExtractor().extract(msg_path, tmp_path / "msg.artifacts", LIMITS)
        assert from_eml.email is not None and from_msg.email is not None
        assert from_msg.email["email_hash"] == from_eml.email["email_hash"]
        assert email_hash_of_file(msg_path, LIMITS) == from_eml.email["email_hash"]
        assert from_msg.email["message_id"] == from_eml.email["message_id"]


def test_a_changed_body_changes_the_email_hash(tmp_path: Path) -> None:
    first = _extract(tmp_path, _message(), "first.msg").email
    second = _extract(tmp_path, _message(body="Grace, the terms changed."), "second.msg").email
    assert first is not None and second is not None
    assert first["email_hash"] != second["email_hash"]


def test_an_html_only_body_is_read_as_text(tmp_path: Path) -> None:
    html = "<html><body><p>Meet at <b>ten</b>.</p><script>x()</script></body></html>"
    extraction = _extract(tmp_path, _message(body=None, html=html))
    text = extraction.segments[0].text
    assert "Meet at ten." in text and "x()" not in text and "<b>" not in text


def test_a_compressed_rtf_body_is_decompressed_and_read_as_text(tmp_path: Path) -> None:
    rtf = (
        r"{\rtf1\ansi\deff0 {\fonttbl {\f0 Arial;}}\f0 The RTF body says \b hold\b0  the deal.\par}"
    )
    extraction = _extract(tmp_path, _message(body=None, rtf=rtf))
    assert "The RTF body says hold the deal." in extraction.segments[0].text


def test_an_embedded_message_becomes_an_attached_message_read_like_any_eml(
    tmp_path: Path,
) -> None:
    inner = _message(
        subject="Original terms",
        message_id="<terms-0@example.test>",
        in_reply_to=None,
        references=None,
        attachments=[msggen.MsgAttachment("old.txt", b"Pay 12.\n", "text/plain")],
    )
    outer = _message(
        subject="FW: Original terms",
        attachments=[msggen.MsgAttachment("Original terms.msg", embedded=inner)],
    )
    extraction = _extract(tmp_path, outer)
    assert [c.name for c in extraction.children] == ["attachment 1: Original terms.msg"]
    child = tmp_path / "mail.msg.artifacts" / extraction.children[0].artifact_path
    assert media_types.detect_media_type(child) == media_types.EML
    inner_extraction = EmlExtractor().extract(child, tmp_path / "inner", LIMITS)
    assert inner_extraction.email is not None
    assert inner_extraction.email["subject"] == "Original terms"
    assert inner_extraction.email["message_id"] == "terms-0@example.test"
    grandchild = tmp_path / "inner" / inner_extraction.children[0].artifact_path
    assert grandchild.read_bytes() == b"Pay 12.\n"


def test_transport_headers_fill_in_what_the_properties_lack(tmp_path: Path) -> None:
    headers = (
        "Message-ID: <from-headers@example.test>\r\n"
        "References: <a@example.test> <b@example.test>\r\n"
        "In-Reply-To: <b@example.test>\r\n"
        "Thread-Index: AcZ0d2Fy\r\n"
    )
    extraction = _extract(
        tmp_path,
        _message(
            message_id=None,
            in_reply_to=None,
            references=None,
            conversation_index=None,
            transport_headers=headers,
        ),
    )
    identity = extraction.email
    assert identity is not None
    assert identity["message_id"] == "from-headers@example.test"
    assert identity["references"] == ["a@example.test", "b@example.test"]
    assert identity["in_reply_to"] == "b@example.test"
    assert identity["thread_index"] == "AcZ0d2Fy"


def test_a_subject_with_line_breaks_cannot_inject_headers(tmp_path: Path) -> None:
    extraction = _extract(tmp_path, _message(subject="Hello\r\nBcc: spy@evil.test"))
    identity = extraction.email
    assert identity is not None
    assert identity["subject"] == "Hello Bcc: spy@evil.test"
    assert identity["bcc"] == ["judy@example.test"]


@pytest.mark.parametrize("cut", [600, 1500])
def test_a_truncated_msg_fails_as_corrupt(tmp_path: Path, cut: int) -> None:
    whole = msggen.build_msg(_message())
    source = tmp_path / "cut.msg"
    source.write_bytes(whole[:cut])
    with pytest.raises(errors.CorruptFileError):
        MsgExtractor().extract(source, tmp_path / "artifacts", LIMITS)


def test_embedded_messages_nested_past_the_limit_are_refused(tmp_path: Path) -> None:
    message = _message(attachments=[])
    for level in range(LIMITS.max_archive_depth + 2):
        message = _message(
            subject=f"level {level}",
            attachments=[msggen.MsgAttachment(f"level {level}.msg", embedded=message)],
        )
    source = msggen.write_msg(tmp_path / "deep.msg", message)
    with pytest.raises(errors.LimitExceededError):
        MsgExtractor().extract(source, tmp_path / "artifacts", LIMITS)


def test_a_pst_is_recognised_and_refused_with_the_readpst_route(tmp_path: Path) -> None:
    from worker.extractors.pst import PstExtractor

    source = tmp_path / "custodian.pst"
    source.write_bytes(b"!BDN" + bytes(508))
    assert media_types.detect_media_type(source) == media_types.PST
    with pytest.raises(errors.UnsupportedTypeError) as raised:
        PstExtractor().extract(source, tmp_path / "artifacts", LIMITS)
    assert "readpst -r -o" in raised.value.message
    assert raised.value.item_state == "unsupported"
