"""E-mail: identity hashes, EML and MBOX extraction, checkpoints, hostile mail, threading.

Pure functions and extractors run in process here; the same messages go
through the real worker, PostgreSQL and the model in
``tests/integration/test_discovery.py``.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import hashlib
import json
from email.parser import BytesParser
from pathlib import Path

import pytest

from tests import mailgen
from worker import email_identity, errors, media_types
from worker.config import LimitSettings
from worker.email_threads import ThreadInput, thread_messages
from worker.extractors.base import ChildRole
from worker.extractors.email import EmlExtractor, MboxExtractor, parse_message

LIMITS = LimitSettings(sandbox=False)


def _extract_eml(tmp_path: Path, raw: bytes, limits: LimitSettings = LIMITS):
    source = tmp_path / "message.eml"
    source.write_bytes(raw)
    return EmlExtractor().extract(source, tmp_path / "artifacts", limits)


def test_a_message_becomes_one_part_with_headers_and_its_attachments_children(
    tmp_path: Path,
) -> None:
    thread = mailgen.forecast_thread()
    extraction = _extract_eml(tmp_path, bytes(thread.forward))
    assert [segment.label for segment in extraction.segments] == ["message"]
    text = extraction.segments[0].text
    assert "From: bob@example.test" in text and "Subject: Fwd: Q3 forecast" in text
    assert "Carol, see below" in text and "Attachments: notes.txt" in text
    assert [(c.name, c.role) for c in extraction.children] == [
        ("attachment 1: notes.txt", ChildRole.attachment)
    ]
    child = tmp_path / "artifacts" / extraction.children[0].artifact_path
    assert child.read_bytes() == b"Forecast notes: flat revenue.\n"
    identity = extraction.email
    assert identity is not None
    assert identity["message_id"] == "q3-4@example.test"
    assert identity["references"] == ["q3-1@example.test", "q3-2@example.test", "q3-3@example.test"]
    assert identity["message_id_hash"] == hashlib.md5(b"<q3-4@example.test>").hexdigest()
    assert identity["attachment_hashes"] == [
        f"notes.txt:{hashlib.sha256(b'Forecast notes: flat revenue.' + bytes([10])).hexdigest()}"
    ]


def test_the_normalised_hash_ignores_transport_differences_but_not_content() -> None:
    message = mailgen.lunch_message()
    as_sent = bytes(message)
    # The same message as another server exported it: LF line endings, a
    # Received header added, headers folded differently.
    exported = b"Received: from mx.example.test by store\n" + as_sent.replace(b"\r\n", b"\n")
    changed = as_sent.replace(b"noon", b"one")

    def email_hash(raw: bytes) -> str:
        parsed = parse_message(raw, LIMITS)
        body = parsed.get_body(("plain",)).get_content().strip()
        fields = email_identity.read_fields(parsed, body, [])
        return email_identity.normalised_email_hash(fields, [])

    assert email_hash(as_sent) == email_hash(exported)
    assert email_hash(as_sent) != email_hash(changed)


def test_the_email_hash_recipe_is_the_documented_one() -> None:
    fields = email_identity.MessageFields(
        sender="Dave@Example.test",
        to=["erin@example.test", "alice@example.test"],
        cc=[],
        bcc=[],
        sent_at=dt.datetime(2024, 3, 3, 9, 0, 0, 700000, tzinfo=dt.UTC),
        subject="Team   lunch",
        message_id=None,
        message_id_raw=None,
        in_reply_to=None,
        references=[],
        thread_index=None,
        body="Lunch is at noon!",
    )
    recipe = (
        "from:dave@example.test\nto:alice@example.test,erin@example.test\n"
        "date:2024-03-03T09:00:00Z\nsubject:Team lunch\nbody:lunchisatnoon\nattachments:a:1,b:2"
    )
    expected = hashlib.sha256(recipe.encode()).hexdigest()
    assert email_identity.normalised_email_hash(fields, ["b:2", "a:1"]) == expected


def test_a_forwarded_message_is_an_attachment_child(tmp_path: Path) -> None:
    thread = mailgen.forecast_thread()
    wrapper = mailgen.build(
        mailgen.Draft(
            "bob@example.test",
            ["dan@example.test"],
            "Fw: the original",
            "FYI",
            mailgen.START,
            "wrap@example.test",
            forwarded=thread.original,
        )
    )
    extraction = _extract_eml(tmp_path, bytes(wrapper))
    (child,) = extraction.children
    assert child.name.endswith(".eml")
    inner = (tmp_path / "artifacts" / child.artifact_path).read_bytes()
    assert media_types.detect_media_type(tmp_path / "artifacts" / child.artifact_path) == (
        media_types.EML
    )
    assert b"q3-1@example.test" in inner


def test_broken_mime_keeps_the_body_and_counts_defects(tmp_path: Path) -> None:
    extraction = _extract_eml(tmp_path, mailgen.broken_mime())
    assert "The body survives." in extraction.segments[0].text
    assert extraction.metadata["mime_defects"] >= 1


def test_undeclared_latin1_headers_are_read_not_fatal(tmp_path: Path) -> None:
    extraction = _extract_eml(tmp_path, mailgen.latin1_header())
    text = extraction.segments[0].text
    assert "Der Bericht folgt." in text
    assert extraction.email is not None and extraction.email["subject"]
    json.dumps(extraction.to_dict())  # storable as the sandbox sends it


def test_a_ten_thousand_part_message_fails_as_limit_exceeded_quickly(tmp_path: Path) -> None:
    with pytest.raises(errors.LimitExceededError, match="MIME parts"):
        _extract_eml(tmp_path, mailgen.many_parts(10_000))


def test_a_mailbox_is_a_container_of_messages_with_counts(tmp_path: Path) -> None:
    thread = mailgen.forecast_thread()
    box = mailgen.write_mbox(tmp_path / "inbox.mbox", [*thread.messages(), mailgen.lunch_message()])
    assert media_types.detect_media_type(box) == media_types.MBOX
    extraction = MboxExtractor().extract(box, tmp_path / "artifacts", LIMITS)
    assert extraction.container and extraction.segments == []
    assert extraction.metadata["messages"] == {"expected": 5, "extracted": 5, "failed": 0}
    assert [child.role for child in extraction.children] == [ChildRole.message] * 5
    assert extraction.children[1].name == "message 2: Re: Q3 forecast"
    assert all(child.email_hash for child in extraction.children)
    first = tmp_path / "artifacts" / extraction.children[0].artifact_path
    parsed = BytesParser(policy=email.policy.default).parsebytes(first.read_bytes())
    assert parsed["Message-ID"] == "<q3-1@example.test>"


def test_a_mailbox_extraction_killed_half_way_resumes_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [
        mailgen.build(
            mailgen.Draft(
                "a@example.test",
                ["b@example.test"],
                f"note {number}",
                f"body {number}",
                mailgen.START + dt.timedelta(minutes=number),
                f"n{number}@example.test",
            )
        )
        for number in range(450)
    ]
    box = mailgen.write_mbox(tmp_path / "big.mbox", messages)
    artifacts = tmp_path / "artifacts"
    from worker.extractors import email as email_extractor

    real_write = email_extractor._write_message
    written: list[int] = []

    def dies_at_message_301(*args, **kwargs):
        index = args[2]
        if index == 300:
            raise KeyboardInterrupt("the worker was killed")
        written.append(index)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(email_extractor, "_write_message", dies_at_message_301)
    with pytest.raises(KeyboardInterrupt):
        MboxExtractor().extract(box, artifacts, LIMITS)
    assert len(written) == 300
    written.clear()
    monkeypatch.setattr(
        email_extractor,
        "_write_message",
        lambda *a, **k: written.append(a[2]) or real_write(*a, **k),
    )
    extraction = MboxExtractor().extract(box, artifacts, LIMITS)
    # The checkpoint is written every 200 messages: 200 are not read again.
    assert written[0] == 200 and len(written) == 250
    assert extraction.metadata["resumed_at_message"] == 201
    assert extraction.metadata["messages"] == {"expected": 450, "extracted": 450, "failed": 0}
    assert [child.ordinal for child in extraction.children] == list(range(1, 451))


def test_an_unreadable_message_in_a_mailbox_is_still_a_child_that_fails_alone(
    tmp_path: Path,
) -> None:
    box = tmp_path / "mixed.mbox"
    good = bytes(mailgen.lunch_message()).replace(b"\r\n", b"\n")
    box.write_bytes(
        b"From x@example.test Fri Mar  1 09:00:00 2024\n" + good + b"\n"
        b"From y@example.test Fri Mar  1 09:00:00 2024\n" + mailgen.many_parts(3000) + b"\n"
    )
    extraction = MboxExtractor().extract(box, tmp_path / "artifacts", LIMITS)
    assert extraction.metadata["messages"]["expected"] == 2
    assert len(extraction.children) == 2
    hostile = tmp_path / "artifacts" / extraction.children[1].artifact_path
    with pytest.raises(errors.LimitExceededError):
        EmlExtractor().extract(hostile, tmp_path / "a2", LIMITS)


def _thread_input(item_id: int, message, **overrides) -> ThreadInput:
    parsed = parse_message(bytes(message), LIMITS)
    body = parsed.get_body(("plain",)).get_content()
    fields = email_identity.read_fields(parsed, body, [])
    values = {
        "item_id": item_id,
        "message_id": fields.message_id,
        "in_reply_to": fields.in_reply_to,
        "references": fields.references,
        "thread_index": fields.thread_index,
        "subject": fields.subject,
        "sent_at": fields.sent_at,
        "body_letters": email_identity.letters_and_digits(body),
        "attachment_hashes": [],
    }
    values.update(overrides)
    return ThreadInput(**values)


def test_replies_and_a_forward_share_a_thread_in_date_order_with_inclusives() -> None:
    thread = mailgen.forecast_thread()
    lunch = mailgen.lunch_message()
    # Given out of order: position comes from the dates, not the arrival.
    inputs = [
        _thread_input(4, thread.forward, attachment_hashes=["notes.txt:x"]),
        _thread_input(1, thread.original),
        _thread_input(3, thread.second_reply),
        _thread_input(2, thread.reply),
        _thread_input(9, lunch),
    ]
    places = thread_messages(inputs)
    q3 = {places[i].thread_id for i in (1, 2, 3, 4)}
    assert len(q3) == 1 and places[9].thread_id not in q3
    assert [places[i].position for i in (1, 2, 3, 4)] == [0, 1, 2, 3]
    # The forward quotes the second reply whole, which quotes the reply, which quotes the original.
    assert places[4].inclusive and places[9].inclusive
    assert not places[1].inclusive and not places[2].inclusive and not places[3].inclusive
    assert places[1].included_in == 4 and places[3].included_in == 4


def test_a_message_with_an_attachment_no_later_one_has_stays_inclusive() -> None:
    thread = mailgen.forecast_thread()
    places = thread_messages(
        [
            _thread_input(1, thread.original, attachment_hashes=["forecast.xlsx:abc"]),
            _thread_input(2, thread.reply),
        ]
    )
    assert places[1].inclusive and places[2].inclusive


def test_thread_index_joins_replies_that_lost_their_references() -> None:
    root = bytes(range(22))
    first_index = __import__("base64").b64encode(root).decode()
    reply_index = __import__("base64").b64encode(root + b"\x00\x01\x02\x03\x04").decode()
    first = mailgen.build(
        mailgen.Draft(
            "a@example.test",
            ["b@example.test"],
            "Budget",
            "Numbers?",
            mailgen.START,
            "ti-1@example.test",
            thread_index=first_index,
        )
    )
    reply = mailgen.build(
        mailgen.Draft(
            "b@example.test",
            ["a@example.test"],
            "Answer about money",
            "Here.",
            mailgen.START + dt.timedelta(hours=1),
            "ti-2@example.test",
            thread_index=reply_index,
        )
    )
    places = thread_messages([_thread_input(1, first), _thread_input(2, reply)])
    assert places[1].thread_id == places[2].thread_id
    assert (places[1].position, places[2].position) == (0, 1)


def test_a_reply_with_no_headers_joins_by_subject_but_an_unrelated_same_subject_does_not() -> None:
    def draft(item: int, subject: str, hours: int) -> ThreadInput:
        message = mailgen.build(
            mailgen.Draft(
                "a@example.test",
                ["b@example.test"],
                subject,
                f"text {item}",
                mailgen.START + dt.timedelta(hours=hours),
                f"s{item}@example.test",
            )
        )
        return _thread_input(item, message)

    places = thread_messages(
        [draft(1, "Site visit", 0), draft(2, "RE: [ext] Site visit", 1), draft(3, "Site visit", 2)]
    )
    assert places[1].thread_id == places[2].thread_id
    # Not a reply: the same subject alone does not make a thread.
    assert places[3].thread_id != places[1].thread_id
