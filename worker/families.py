"""Families: the files found inside an item become items of their own.

A mailbox's messages, a message's attachments, the files embedded in a Word
document: each is stored in the content store, recorded as an item with its
parent, its family, its level and its place among its siblings, and given an
item run in the run that found it, so it is extracted, analysed, retried and
reported like any submitted file. Everything here runs inside the caller's
transaction, with the parent's extraction, so a family is recorded whole or
not at all.

De-duplication is decided here for documents found in containers, and at
submit for submitted files, by one rule (:func:`dedup_key`). It applies to a
family's top-level document only: a mailbox's messages are top-level (a
mailbox is a container, not a document), an attachment never is, so a child
is never removed from its family. A duplicate top-level document is not made
an item again; the path it was found at is recorded on the item it repeats,
with its custodian, so the item lists every custodian and path that held it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import Item, ItemRun, ItemSource, ItemState, Job
from worker import content_store, errors, media_types
from worker.extractors.base import ChildRole, ExtractedChild

DEDUP_MODES = ("global", "custodian", "none")
PATH_SEPARATOR = " › "


def dedup_key(
    mode: str, *, sha256: str, email_hash: str | None, custodian: str | None, path: str
) -> str:
    """The key two top-level documents share when they are one document for review.

    ``global``: the same message (by its normalised e-mail hash) or the same
    bytes (SHA-256) anywhere in the job. ``custodian``: the same, within one
    custodian's collection. ``none``: every path is its own document.
    """
    if mode not in DEDUP_MODES:
        raise errors.UsageError(f"unknown dedup mode {mode!r}; use one of {', '.join(DEDUP_MODES)}")
    identity = f"email:{email_hash}" if email_hash else f"sha256:{sha256}"
    if mode == "custodian":
        return f"{identity}|custodian:{custodian or ''}"[:200]
    if mode == "none":
        return f"path:{hashlib.sha256(path.encode('utf-8', 'surrogatepass')).hexdigest()}"
    return identity


@dataclass
class FamilyUpdate:
    """What recording one item's children added."""

    item_run_ids: list[int] = field(default_factory=list)  # new, pending: to be published
    new_items: int = 0
    duplicates: int = 0  # top-level documents recorded as another path of an existing item


def record_children(
    session: Session,
    parent: Item,
    children: Sequence[ExtractedChild],
    *,
    artifacts_dir: Path,
    objects_dir: Path,
    run_id: int,
    actor: str,
) -> FamilyUpdate:
    """Store each child's bytes and record it as an item (or a duplicate path) of ``parent``'s job.

    ``artifacts_dir`` is the parent's artifacts directory, where the extractor
    wrote the children. The new items' runs are pending: the caller publishes
    them once this transaction commits (the recovery sweep does, if it dies first).
    """
    job = session.get(Job, parent.job_id)
    assert job is not None
    update = FamilyUpdate()
    drafts: list[audit.EventDraft] = []
    new_runs: list[ItemRun] = []
    for child in children:
        source = artifacts_dir / child.artifact_path
        stored = content_store.store_file(source, objects_dir)
        media_type = _detected_type(objects_dir / stored.relative_path)
        path = f"{parent.path}{PATH_SEPARATOR}{child.name}"
        # A container's files and messages are documents of their own only when
        # the container heads its own family (a submitted ZIP or mailbox); a ZIP
        # attached to a message keeps its files in the message's family.
        top_level = child.role != ChildRole.attachment and parent.family_id in (None, parent.id)
        key = (
            dedup_key(
                job.dedup_mode,
                sha256=stored.sha256,
                email_hash=child.email_hash,
                custodian=parent.custodian,
                path=path,
            )
            if top_level
            else None
        )
        repeated = _existing(session, job.id, key) if key is not None else None
        if repeated is not None:
            session.add(_source(job.id, repeated.id, path, parent))
            update.duplicates += 1
            drafts.append(
                _found_event(actor, run_id, repeated, path, parent, child, duplicate=True)
            )
            continue
        item = Item(
            job_id=job.id,
            path=path,
            size_bytes=stored.size_bytes,
            sha256=stored.sha256,
            md5=stored.md5,
            media_type=media_type,
            stored_path=stored.relative_path,
            custodian=parent.custodian,
            parent_id=parent.id,
            level=parent.level + 1,
            ordinal=child.ordinal,
            dedup_key=key,
        )
        session.add(item)
        session.flush()
        item.family_id = item.id if top_level else (parent.family_id or parent.id)
        session.add(_source(job.id, item.id, path, parent))
        item_run = ItemRun(run_id=run_id, item_id=item.id, state=ItemState.pending)
        session.add(item_run)
        new_runs.append(item_run)
        update.new_items += 1
        drafts.append(_found_event(actor, run_id, item, path, parent, child, duplicate=False))
    job.item_count += update.new_items
    session.flush()
    update.item_run_ids = [item_run.id for item_run in new_runs]
    audit.append_events(session, drafts)
    return update


def _detected_type(path: Path) -> str:
    try:
        return media_types.detect_media_type(path)
    except errors.EmptyFileError:
        return media_types.EMPTY


def _existing(session: Session, job_id: int, key: str) -> Item | None:
    return session.scalar(select(Item).where(Item.job_id == job_id, Item.dedup_key == key))


def _source(job_id: int, item_id: int, path: str, parent: Item) -> ItemSource:
    return ItemSource(
        job_id=job_id,
        item_id=item_id,
        path=path,
        custodian=parent.custodian,
        container_item_id=parent.id,
    )


def _found_event(
    actor: str,
    run_id: int,
    item: Item,
    path: str,
    parent: Item,
    child: ExtractedChild,
    *,
    duplicate: bool,
) -> audit.EventDraft:
    """The custody record of a file found inside another: where, what, and its hashes."""
    return audit.EventDraft(
        "item.found",
        actor,
        item.job_id,
        run_id,
        item.id,
        item.sha256,
        {
            "path": path,
            "parent_item_id": parent.id,
            "role": child.role.value,
            "ordinal": child.ordinal,
            "md5": item.md5,
            "size_bytes": item.size_bytes,
            "media_type": item.media_type,
            "custodian": parent.custodian,
            "duplicate": duplicate,
        },
    )
