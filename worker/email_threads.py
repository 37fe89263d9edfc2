"""E-mail threads: which messages of a job belong together, in what order, and which are inclusive.

Threads are found the way mail readers have since JWZ's algorithm: a
message's ``References`` (and ``In-Reply-To``) name its ancestors, so every
message is linked to the last one it names, and messages sharing an ancestor
(even one not in the collection) share a thread. Outlook's ``Thread-Index``
carries the conversation's first 22 bytes in every reply, which joins what
lost its ``References``. A message with neither, whose subject says it is a
reply or forward ("Re:", "Fw:"), joins the thread whose normalised subject it
shares.

An **inclusive** message is one whose text no later message of its thread
quotes in full, or that carries an attachment none of those has: reviewing
the inclusive messages reviews every unique piece of text. Each
non-inclusive message points at the message that includes it.

:func:`rethread_job` recomputes the whole job (threads change as messages
arrive) when a run completes, and on demand.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import EmailMessage, Item
from worker.email_identity import normalised_subject

_THREAD_INDEX_ROOT_BYTES = 22
_REPLY_MARKERS = ("re:", "fw:", "fwd:", "aw:", "wg:", "sv:", "antw:", "tr:")


@dataclass(frozen=True)
class ThreadInput:
    """What threading reads of one message."""

    item_id: int
    message_id: str | None
    in_reply_to: str | None
    references: Sequence[str]
    thread_index: str | None
    subject: str
    sent_at: dt.datetime | None
    body_letters: str
    attachment_hashes: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class ThreadPlace:
    """Where one message sits: its thread, its position in it, whether it is inclusive."""

    thread_id: str
    position: int  # 0 for the earliest message of the thread
    inclusive: bool
    included_in: int | None  # the item that quotes all of this one, when not inclusive


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, first: str, second: str) -> None:
        a, b = self.find(first), self.find(second)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def thread_messages(messages: Iterable[ThreadInput]) -> dict[int, ThreadPlace]:
    """Each message's thread, position and inclusiveness, by item id."""
    messages = list(messages)
    links = _UnionFind()
    for message in messages:
        own = _own_key(message)
        links.find(own)
        ancestors = [*message.references]
        if message.in_reply_to and message.in_reply_to not in ancestors:
            ancestors.append(message.in_reply_to)
        for ancestor in ancestors:
            links.union(own, f"id:{ancestor}")
        root_index = _thread_index_root(message.thread_index)
        if root_index:
            links.union(own, f"ti:{root_index}")
    _join_by_subject(messages, links)
    groups: dict[str, list[ThreadInput]] = {}
    for message in messages:
        groups.setdefault(links.find(_own_key(message)), []).append(message)
    places: dict[int, ThreadPlace] = {}
    for members in groups.values():
        places.update(_place_thread(members))
    return places


def _own_key(message: ThreadInput) -> str:
    return f"id:{message.message_id}" if message.message_id else f"item:{message.item_id}"


def _thread_index_root(thread_index: str | None) -> str | None:
    """The conversation's first 22 bytes of an Outlook Thread-Index, as hex."""
    if not thread_index:
        return None
    try:
        raw = base64.b64decode(thread_index.strip(), validate=False)
    except (binascii.Error, ValueError):
        return None
    return raw[:_THREAD_INDEX_ROOT_BYTES].hex() if len(raw) >= _THREAD_INDEX_ROOT_BYTES else None


def _join_by_subject(messages: list[ThreadInput], links: _UnionFind) -> None:
    """A reply that names no ancestor joins the thread of its normalised subject."""
    by_subject: dict[str, str] = {}
    for message in sorted(messages, key=_chronological):
        subject = normalised_subject(message.subject)
        if not subject:
            continue
        own = _own_key(message)
        orphan = not message.references and not message.in_reply_to and not message.thread_index
        is_reply = message.subject.strip().lower().startswith(_REPLY_MARKERS)
        if orphan and is_reply and subject in by_subject:
            links.union(own, by_subject[subject])
        by_subject.setdefault(subject, own)


def _chronological(message: ThreadInput) -> tuple[dt.datetime, int]:
    """Date sent, then item id; undated messages last, naive dates (SQLite's) read as UTC."""
    sent = message.sent_at or dt.datetime.max
    return (sent if sent.tzinfo else sent.replace(tzinfo=dt.UTC), message.item_id)


def _place_thread(members: list[ThreadInput]) -> dict[int, ThreadPlace]:
    ordered = sorted(members, key=_chronological)
    thread_id = (
        "T" + hashlib.sha256(_own_key(ordered[0]).encode("utf-8", "replace")).hexdigest()[:12]
    )
    places = {}
    for position, message in enumerate(ordered):
        including = _including_message(message, ordered[position + 1 :])
        places[message.item_id] = ThreadPlace(
            thread_id, position, including is None, including.item_id if including else None
        )
    return places


def _including_message(message: ThreadInput, later: list[ThreadInput]) -> ThreadInput | None:
    """The latest later message that quotes all of ``message`` and has all its attachments."""
    if not message.body_letters:
        return None
    for candidate in reversed(later):
        if message.body_letters in candidate.body_letters and set(message.attachment_hashes) <= set(
            candidate.attachment_hashes
        ):
            return candidate
    return None


# --- the database side ----------------------------------------------------------


def record_message(session: Session, item: Item, email: dict[str, Any]) -> EmailMessage:
    """Store an extracted message's identity and thread fields (thread placement comes later)."""
    body_letters = str(email.get("body_letters") or "")
    sent = email.get("date")
    row = EmailMessage(
        item_id=item.id,
        job_id=item.job_id,
        message_id=email.get("message_id"),
        in_reply_to=email.get("in_reply_to"),
        references=list(email.get("references") or []),
        thread_index=email.get("thread_index"),
        subject=email.get("subject"),
        sender=email.get("from"),
        sent_at=dt.datetime.fromisoformat(sent) if sent else None,
        email_hash=str(email["email_hash"]),
        message_id_hash=email.get("message_id_hash"),
        body_digest=hashlib.md5(body_letters.encode("utf-8"), usedforsecurity=False).hexdigest(),
        body_letters=body_letters,
        attachment_hashes=list(email.get("attachment_hashes") or []),
    )
    session.add(row)
    return row


def rethread_job(session: Session, job_id: int) -> dict[str, int] | None:
    """Place every message of the job in its thread; counts, or None when it holds no e-mail."""
    rows = session.scalars(select(EmailMessage).where(EmailMessage.job_id == job_id)).all()
    if not rows:
        return None
    places = thread_messages(
        ThreadInput(
            row.item_id,
            row.message_id,
            row.in_reply_to,
            row.references or [],
            row.thread_index,
            row.subject or "",
            row.sent_at,
            row.body_letters,
            row.attachment_hashes or [],
        )
        for row in rows
    )
    for row in rows:
        place = places[row.item_id]
        row.thread_id = place.thread_id
        row.thread_position = place.position
        row.inclusive = place.inclusive
        row.included_in_item_id = place.included_in
    session.flush()
    return {
        "messages": len(rows),
        "threads": len({place.thread_id for place in places.values()}),
        "inclusive": sum(1 for place in places.values() if place.inclusive),
    }
