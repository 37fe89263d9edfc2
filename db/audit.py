"""The append-only, hash-chained audit trail.

Each event extends a chain ("job:<id>", or "global" for events outside a job).
Its hash covers a canonical serialisation of every field plus the previous
event's hash, so altering, removing or re-ordering any stored event breaks
:func:`verify_chain`. Appends to one chain are serialised (a Postgres advisory
lock; SQLite has a single writer anyway) and ``UNIQUE(chain, seq)`` makes a
forked chain impossible even if that lock were bypassed.

Database triggers (see the migrations) reject UPDATE and DELETE on the table;
they stop mistakes, while the hash chain is what proves integrity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from db import storable
from db.base import utcnow
from db.models import AuditEvent

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class EventDraft:
    """An event not yet placed in its chain."""

    action: str
    actor: str
    job_id: int | None = None
    run_id: int | None = None
    item_id: int | None = None
    item_sha256: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChainBreak:
    """The first event whose stored hash does not match what it should be."""

    chain: str
    seq: int
    event_id: int
    reason: str


def chain_name(job_id: int | None) -> str:
    """The chain an event of this job belongs to."""
    return f"job:{job_id}" if job_id is not None else "global"


def canonical_timestamp(moment: dt.datetime) -> str:
    """A fixed, zone-explicit text form of a timestamp, microsecond precision."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compute_event_hash(
    *,
    chain: str,
    seq: int,
    occurred_at: dt.datetime,
    actor: str,
    action: str,
    job_id: int | None,
    run_id: int | None,
    item_id: int | None,
    item_sha256: str | None,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 over sorted-key, fixed-separator JSON (not the database's JSON text)."""
    payload = {
        "chain": chain,
        "seq": seq,
        "occurred_at": canonical_timestamp(occurred_at),
        "actor": actor,
        "action": action,
        "job_id": job_id,
        "run_id": run_id,
        "item_id": item_id,
        "item_sha256": item_sha256,
        "details": details,
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _lock_chain(session: Session, chain: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        lock_key = zlib.crc32(chain.encode("utf-8"))
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})


def _chain_head(session: Session, chain: str) -> tuple[int, str]:
    row = session.execute(
        select(AuditEvent.seq, AuditEvent.event_hash)
        .where(AuditEvent.chain == chain)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return 0, GENESIS_HASH
    return row.seq, row.event_hash


def append_events(session: Session, drafts: Sequence[EventDraft]) -> list[AuditEvent]:
    """Append events in order, inside the caller's transaction.

    Call this in the same transaction as the change the events describe, so
    the change and its record commit or roll back together.
    """
    appended: list[AuditEvent] = []
    heads: dict[str, tuple[int, str]] = {}
    for draft in drafts:
        chain = chain_name(draft.job_id)
        if chain not in heads:
            _lock_chain(session, chain)
            heads[chain] = _chain_head(session, chain)
        last_seq, prev_hash = heads[chain]
        occurred_at = utcnow()
        fields: dict[str, Any] = {
            "chain": chain,
            "seq": last_seq + 1,
            "occurred_at": occurred_at,
            "actor": storable.clean_text(draft.actor)[0],
            "action": draft.action,
            "job_id": draft.job_id,
            "run_id": draft.run_id,
            "item_id": draft.item_id,
            "item_sha256": draft.item_sha256,
            # Cleaned before hashing, so the hash covers exactly what is stored.
            "details": storable.clean(draft.details)[0],
            "prev_hash": prev_hash,
        }
        event_hash = compute_event_hash(**fields)
        event = AuditEvent(**fields, event_hash=event_hash)
        appended.append(event)
        heads[chain] = (last_seq + 1, event_hash)
    session.add_all(appended)
    session.flush()
    return appended


def append_event(session: Session, draft: EventDraft) -> AuditEvent:
    """Append one event; see :func:`append_events`."""
    return append_events(session, [draft])[0]


def verify_chain(session: Session, chain: str) -> ChainBreak | None:
    """Recompute one chain; return its first break, or None when it is intact."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
    )
    for event in events:
        if event.seq != expected_seq:
            return ChainBreak(chain, expected_seq, event.id, f"event {expected_seq} is missing")
        if event.prev_hash != expected_prev:
            return ChainBreak(chain, event.seq, event.id, "previous-hash link does not match")
        recomputed = compute_event_hash(
            chain=event.chain,
            seq=event.seq,
            occurred_at=event.occurred_at,
            actor=event.actor,
            action=event.action,
            job_id=event.job_id,
            run_id=event.run_id,
            item_id=event.item_id,
            item_sha256=event.item_sha256,
            details=event.details,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.event_hash:
            return ChainBreak(chain, event.seq, event.id, "content does not match its hash")
        expected_prev = event.event_hash
        expected_seq += 1
    return None


def chains(session: Session) -> list[str]:
    """Every chain that has events."""
    return list(session.scalars(select(AuditEvent.chain).group_by(AuditEvent.chain)))


def event_count(session: Session, chain: str) -> int:
    """How many events a chain holds."""
    return session.scalar(select(func.count()).where(AuditEvent.chain == chain)) or 0
