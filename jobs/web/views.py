"""What the pages and the API show, read from the database as plain data.

One function per thing shown, used by both the JSON API and the HTML pages,
so the two cannot disagree. Nothing here checks access or writes the access
log: the routes do that before calling in.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections import Counter
from typing import Annotated, Any

import annotated_types
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from db import audit
from db.models import (
    AuditEvent,
    Item,
    ItemRun,
    Job,
    JobGrant,
    Result,
    ReviewDecision,
    Run,
    StoredSegment,
    User,
    UserRole,
)
from jobs import access_log, accounts, item_filter, reruns, run_diff
from jobs import status as status_module
from worker import errors
from worker.imaging.units import UNIT_MEDIA_TYPES

# The artifact types the pages show inline; anything else downloads.
ARTIFACT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".wav": "audio/wav",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".flac": "audio/flac",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}


def timestamp(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def visible_job_ids(session: Session, principal: accounts.Principal) -> set[int] | None:
    """The jobs a principal may list (None: every job)."""
    if principal.role in (UserRole.admin, UserRole.auditor):
        return None
    return accounts.granted_job_ids(session, principal.user_id)


def _run_counts(session: Session, run_id: int) -> dict[str, int]:
    rows = session.execute(
        select(ItemRun.state, func.count()).where(ItemRun.run_id == run_id).group_by(ItemRun.state)
    )
    return {state.value: count for state, count in rows}


def job_summary(session: Session, job: Job) -> dict[str, Any]:
    """A job's line in the job list: its latest run's progress."""
    latest = session.scalar(
        select(Run).where(Run.job_id == job.id).order_by(Run.number.desc()).limit(1)
    )
    counts = _run_counts(session, latest.id) if latest is not None else {}
    total = sum(counts.values())
    finished = sum(counts.get(state, 0) for state in ("done", "failed", "unsupported", "cancelled"))
    return {
        "id": job.id,
        "name": job.name,
        "created_at": timestamp(job.created_at),
        "submitted_by": job.submitted_by,
        "file_count": job.file_count,
        "item_count": job.item_count,
        "paused": job.paused_at is not None,
        "run": None
        if latest is None
        else {
            "id": latest.id,
            "number": latest.number,
            "state": latest.state.value,
            "task": latest.task_name,
            "model": latest.model_name,
            "counts": counts,
            "total": total,
            "finished": finished,
        },
    }


def job_list(session: Session, principal: accounts.Principal, limit: int) -> list[dict[str, Any]]:
    visible = visible_job_ids(session, principal)
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if visible is not None:
        query = query.where(Job.id.in_(visible or {-1}))
    return [job_summary(session, job) for job in session.scalars(query)]


def require_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise errors.NotFoundError(f"no job with id {job_id}")
    return job


def job_detail(session: Session, job_id: int) -> dict[str, Any]:
    """The job page: counts by state, failures by code, every run."""
    job = require_job(session, job_id)
    detail = job_summary(session, job)
    status = status_module.run_status(session, job_id)
    detail["failures_by_code"] = status.failures_by_code
    detail["runs"] = [
        {
            "id": summary.run_id,
            "number": summary.number,
            "parent_number": summary.parent_number,
            "state": summary.state,
            "created_at": summary.created_at,
            "created_by": summary.created_by,
            "task": summary.task,
            "model": summary.model_name,
            "counts": summary.counts,
            "wall_seconds": summary.wall_seconds,
            "selection": summary.selection,
            "priority": summary.priority,
            "deterministic": summary.deterministic,
        }
        for summary in status_module.run_summaries(session, job_id)
    ]
    return detail


# --- items, a page at a time ------------------------------------------------------


def encode_cursor(item_id: int) -> str:
    return base64.urlsafe_b64encode(f"item:{item_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "item":
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.UsageError(f"cursor {cursor!r} is not one this server gave out") from exc


def items_page(
    session: Session,
    job_id: int,
    *,
    run_number: int | None = None,
    where: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    """One page of a job's items in a run, in item order, filtered as ``sieve rerun --where``."""
    require_job(session, job_id)
    run = status_module.resolve_run(session, job_id, run_number)
    parsed = item_filter.parse(where) if where else None
    after = decode_cursor(cursor) if cursor else 0
    chosen: list[tuple[int, item_filter.ItemFacts]] = []
    for item_id, facts in reruns.item_facts(session, run):
        if item_id <= after or (parsed is not None and not parsed.matches(facts)):
            continue
        chosen.append((item_id, facts))
        if len(chosen) > limit:
            break
    more = len(chosen) > limit
    chosen = chosen[:limit]
    return {
        "job_id": job_id,
        "run": run.number,
        "items": [
            {
                "id": item_id,
                "path": facts.path,
                "media_type": facts.media_type,
                "state": facts.state,
                "error_code": facts.error_code,
                "level": facts.level,
                "family_id": facts.family_id,
                "custodian": facts.custodian,
                "page_count": facts.page_count,
            }
            for item_id, facts in chosen
        ],
        "next_cursor": encode_cursor(chosen[-1][0]) if more and chosen else None,
    }


# Ids and run numbers as requests may give them: PostgreSQL's integer, so that a number
# past it is a 422 for the caller rather than a database error.
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, annotated_types.Interval(ge=1, le=MAX_ROW_ID)]


# --- one item ------------------------------------------------------------------------


def require_item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise errors.NotFoundError(f"no item with id {item_id}")
    return item


def item_title(path: str) -> str:
    """The last part of an item's path, as a page title: a file's name, an attachment's,
    or a series' description (its path ends ``folder/› series 3 CT (14 instances) UID``)."""
    return path.rsplit("/", 1)[-1].removeprefix("› ").strip() or path


def segment_view(segment: StoredSegment) -> dict[str, Any]:
    return {
        "id": segment.id,
        "kind": segment.kind,
        "index": segment.index,
        "label": segment.label,
        "text": segment.text,
        "anchor": anchor_of(segment.label),
        "artifact": f"/api/artifacts/{segment.id}" if segment.artifact_path else None,
        "artifact_type": artifact_type(segment.artifact_path) if segment.artifact_path else None,
        "start_seconds": segment.start_seconds,
        "end_seconds": segment.end_seconds,
        "needs_ocr": segment.needs_ocr,
    }


def anchor_of(label: str) -> str:
    """The HTML id a segment's label becomes, so a citation can link to it."""
    return "seg-" + "".join(ch if ch.isalnum() else "-" for ch in label.lower()).strip("-")


def artifact_type(path: str) -> str:
    suffix = path[path.rfind(".") :].lower() if "." in path else ""
    return ARTIFACT_TYPES.get(suffix, "application/octet-stream")


def _result_view(result: Result, labels: set[str]) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "output": result.output,
        "citations": [
            {"label": label, "anchor": anchor_of(label) if label in labels else None}
            for label in result.citations
        ],
        "partials": [
            {
                **partial,
                "cite_links": [
                    {"label": label, "anchor": anchor_of(label) if label in labels else None}
                    for label in partial.get("cites", [])
                ],
            }
            for partial in result.partials
        ],
        "grounding": result.grounding,
        "provenance": {
            "model_name": result.model_name,
            "model_sha256": result.model_sha256,
            "task": f"{result.task_name} v{result.task_version}",
            "prompt_hash": result.prompt_hash,
            "input_sha256": result.input_sha256,
            "extractor": result.extractor,
            "seed": result.seed,
            "sampling": result.sampling,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "model_calls": result.model_calls,
            "timings": result.timings,
            "inputs": result.inputs,
            "produced_by": result.produced_by,
            "created_at": timestamp(result.created_at),
        },
    }


def imaging_view(item: Item, segments: list[StoredSegment]) -> dict[str, Any] | None:
    """A series or study item: each series as assembled, and a thumbnail per image shown.

    None for any other item. Read from what the extractor recorded (the item's
    metadata and its segments), so the page shows exactly what the model was shown.
    """
    if item.media_type not in UNIT_MEDIA_TYPES.values():
        return None
    metadata = item.doc_metadata or {}
    series_rows = []
    for entry in metadata.get("series", []):
        assembly = entry.get("assembly") or {}
        stacks = assembly.get("stacks", [])
        series_rows.append(
            {
                "number": entry.get("series_number"),
                "description": entry.get("series_description") or "",
                "modality": entry.get("modality") or "",
                "body_part": entry.get("body_part") or "",
                "instances": entry.get("instances", 0),
                "geometry": assembly.get("geometry", ""),
                "stacks": [
                    {
                        "images": stack.get("images", 0),
                        "spacing_mm": (stack.get("spacing") or {}).get("median_mm"),
                        "regular": (stack.get("spacing") or {}).get("regular"),
                    }
                    for stack in stacks
                ],
                "localizers": len(assembly.get("localizers", [])),
                "set_aside": assembly.get("set_aside", []),
                "unreadable": len(entry.get("unreadable_instances", [])),
                "notes": assembly.get("notes", []),
            }
        )
    thumbnails = [
        {
            "anchor": anchor_of(segment.label),
            "label": segment.label,
            "artifact": f"/api/artifacts/{segment.id}",
            "offset_mm": (segment.attributes or {}).get("offset_mm"),
        }
        for segment in segments
        if segment.artifact_path and artifact_type(segment.artifact_path).startswith("image/")
    ]
    return {
        "unit": metadata.get("unit", ""),
        "instances": metadata.get("instances", 0),
        "series": series_rows,
        "thumbnails": thumbnails,
    }


def item_detail(session: Session, item: Item) -> dict[str, Any]:
    """Everything the item page shows: the item, its segments, each run's state and result."""
    segments = list(item.segments)
    labels = {segment.label for segment in segments}
    runs = session.execute(
        select(Run, ItemRun, Result)
        .join(ItemRun, and_(ItemRun.run_id == Run.id, ItemRun.item_id == item.id))
        .outerjoin(Result, and_(Result.run_id == Run.id, Result.item_id == item.id))
        .order_by(Run.number)
    ).all()
    decisions = session.scalars(
        select(ReviewDecision).where(ReviewDecision.item_id == item.id).order_by(ReviewDecision.id)
    ).all()
    return {
        "id": item.id,
        "job_id": item.job_id,
        "path": item.path,
        "media_type": item.media_type,
        "size_bytes": item.size_bytes,
        "sha256": item.sha256,
        "page_count": item.page_count,
        "extractor": item.extractor,
        "metadata": item.doc_metadata,
        "custodian": item.custodian,
        "family_id": item.family_id,
        "parent_id": item.parent_id,
        "level": item.level,
        "has_identifiers": bool(item.identifiers),
        "segments": [segment_view(segment) for segment in segments],
        "imaging": imaging_view(item, segments),
        "runs": [
            {
                "run_id": run.id,
                "number": run.number,
                "state": item_run.state.value,
                "error_code": item_run.error_code,
                "error_message": item_run.error_message,
                "result": _result_view(result, labels) if result is not None else None,
            }
            for run, item_run, result in runs
        ],
        "decisions": [
            {
                "run_id": decision.run_id,
                "user": decision.user.name,
                "decision": decision.decision,
                "note": decision.note,
                "created_at": timestamp(decision.created_at),
            }
            for decision in decisions
        ],
    }


# --- runs compared, audit, users ----------------------------------------------------


def run_diff_view(session: Session, job_id: int, number_a: int, number_b: int) -> dict[str, Any]:
    run_a = status_module.resolve_run(session, job_id, number_a)
    run_b = status_module.resolve_run(session, job_id, number_b)
    if run_a.number != number_a or run_b.number != number_b:
        raise errors.NotFoundError(f"job {job_id} has no run {number_a} or {number_b}")
    diffs = list(run_diff.diff_runs(session, run_a.id, run_b.id))
    return {
        "job_id": job_id,
        "a": {"id": run_a.id, "number": run_a.number, "task": run_a.task_name},
        "b": {"id": run_b.id, "number": run_b.number, "task": run_b.task_name},
        "summary": run_diff.summarise(diffs),
        "items": [diff.as_row() for diff in diffs],
    }


def audit_view(session: Session, job_id: int, limit: int = 500) -> dict[str, Any]:
    """A job's chain (newest last), whether it verifies, and its access events counted."""
    require_job(session, job_id)
    chain = audit.chain_name(job_id)
    broken = audit.verify_chain(session, chain)
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.chain == chain)
        .order_by(AuditEvent.seq.desc())
        .limit(limit)
    ).all()
    actions = Counter(
        action
        for action in session.scalars(select(AuditEvent.action).where(AuditEvent.chain == chain))
    )
    return {
        "job_id": job_id,
        "chain": chain,
        "event_count": sum(actions.values()),
        "actions": dict(sorted(actions.items())),
        "verified": broken is None,
        "break": None
        if broken is None
        else {"seq": broken.seq, "event_id": broken.event_id, "reason": broken.reason},
        "events": [
            {
                "seq": event.seq,
                "occurred_at": timestamp(event.occurred_at),
                "actor": event.actor,
                "action": event.action,
                "run_id": event.run_id,
                "item_id": event.item_id,
                "details": event.details,
                "event_hash": event.event_hash,
            }
            for event in reversed(events)
        ],
    }


ACCESS_ACTIONS = (access_log.CONTENT_VIEWED, "export.downloaded", "review.decided")


def access_events(session: Session, job_id: int, limit: int = 1000) -> list[dict[str, Any]]:
    """Who read or decided on what in a job, newest first: the access log, queried apart."""
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.chain == audit.chain_name(job_id), AuditEvent.action.in_(ACCESS_ACTIONS))
        .order_by(AuditEvent.seq.desc())
        .limit(limit)
    )
    return [
        {
            "seq": event.seq,
            "occurred_at": timestamp(event.occurred_at),
            "actor": event.actor,
            "action": event.action,
            "item_id": event.item_id,
            "details": event.details,
        }
        for event in events
    ]


def diff_access_details(diff: dict[str, Any]) -> dict[str, Any]:
    """What a run diff showed, for its access event: the runs and the items whose answers changed."""
    shown = [row["item_id"] for row in diff["items"] if row["status"] != "unchanged"]
    return {"runs": [diff["a"]["number"], diff["b"]["number"]], "items": shown[:1000]}


def users_view(session: Session) -> list[dict[str, Any]]:
    grants: dict[int, list[int]] = {}
    for user_id, job_id in session.execute(select(JobGrant.user_id, JobGrant.job_id)):
        grants.setdefault(user_id, []).append(job_id)
    return [
        {
            "name": user.name,
            "role": user.role.value,
            "disabled": user.disabled_at is not None,
            "created_at": timestamp(user.created_at),
            "jobs": sorted(grants.get(user.id, [])),
        }
        for user in session.scalars(select(User).order_by(User.name))
    ]
