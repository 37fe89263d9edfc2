"""Chain of custody: verifying a job's audit trail and reporting what happened to every file.

The hash chain (:mod:`db.audit`) proves that no stored event was altered,
reordered or removed from the middle. Removing the *newest* events leaves a
shorter chain that is still internally consistent, so verification also
checks the chain against the state it vouches for: every stored result must
have its ``result.stored`` event, and every finished item its final state
event. Someone who deletes the tail must then also delete results and roll
item states back, which is no longer a quiet edit.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import FINAL_ITEM_STATES, AuditEvent, Item, ItemRun, ItemSource, Job, Result, Run
from worker import errors


@dataclass(frozen=True)
class CustodyProblem:
    """One thing wrong with a job's trail, named precisely enough to investigate."""

    chain: str
    event_id: int | None  # the audit row at fault, when one is
    seq: int | None
    reason: str

    def describe(self) -> str:
        """A one-line description for the CLI."""
        where = f"event id {self.event_id} (seq {self.seq})" if self.event_id else "trail"
        return f"{self.chain}: {where}: {self.reason}"


def verify_job(session: Session, job_id: int) -> list[CustodyProblem]:
    """Every problem with job ``job_id``'s trail; empty when it is intact."""
    chain = audit.chain_name(job_id)
    # Past the first broken link nothing can be trusted: report only that one.
    return _first_break(session, chain) or _missing_events(session, job_id, chain)


def verify_global(session: Session) -> list[CustodyProblem]:
    """Problems with the chain of events that belong to no job (worker starts)."""
    return _first_break(session, audit.chain_name(None))


def _first_break(session: Session, chain: str) -> list[CustodyProblem]:
    broken = audit.verify_chain(session, chain)
    if broken is None:
        return []
    return [CustodyProblem(chain, broken.event_id, broken.seq, broken.reason)]


def _missing_events(session: Session, job_id: int, chain: str) -> list[CustodyProblem]:
    events = session.scalars(select(AuditEvent).where(AuditEvent.chain == chain)).all()
    stored_results = {
        event.details.get("result_id") for event in events if event.action == "result.stored"
    }
    final_states = {
        (event.run_id, event.item_id, event.details.get("to"))
        for event in events
        if event.action == "item.state"
    }
    problems = []
    results = session.execute(
        select(Result.id, Result.item_id)
        .join(Run, Run.id == Result.run_id)
        .where(Run.job_id == job_id)
    ).all()
    for result_id, item_id in results:
        if result_id not in stored_results:
            problems.append(
                CustodyProblem(
                    chain,
                    None,
                    None,
                    f"result {result_id} (item {item_id}) has no result.stored event",
                )
            )
    item_runs = session.execute(
        select(ItemRun.run_id, ItemRun.item_id, ItemRun.state)
        .join(Run, Run.id == ItemRun.run_id)
        .where(Run.job_id == job_id, ItemRun.state.in_(FINAL_ITEM_STATES))
    ).all()
    for run_id, item_id, state in item_runs:
        if (run_id, item_id, state.value) not in final_states:
            problems.append(
                CustodyProblem(
                    chain,
                    None,
                    None,
                    f"item {item_id} is {state.value} in run {run_id} "
                    "but no event records that change",
                )
            )
    return problems


# --- the report ---------------------------------------------------------------


def custody_report(session: Session, job_id: int) -> dict[str, Any]:
    """Everything a chain-of-custody report holds for one job, as plain data.

    Every input file with its hashes and every path it was submitted under;
    per run, what happened to it (state, error, attempts), which worker and
    model produced its result, and the item's audit events in order. The
    verification outcome and the chain's head hash come with it, so the report
    can be checked against the database later.
    """
    job = session.get(Job, job_id)
    if job is None:
        raise errors.NotFoundError(f"no job with id {job_id}")
    chain = audit.chain_name(job_id)
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
    ).all()
    events_by_item: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        events_by_item[event.item_id].append(_event_row(event))
    problems = verify_job(session, job_id)
    return {
        "report": "sieve chain of custody",
        "generated_at": dt.datetime.now(dt.UTC).isoformat(),
        "job": {
            "id": job.id,
            "name": job.name,
            "created_at": job.created_at.isoformat(),
            "submitted_by": job.submitted_by,
            "submitted_host": job.submitted_host,
            "input_roots": job.input_roots,
            "file_count": job.file_count,
            "item_count": job.item_count,
        },
        "runs": [_run_row(run) for run in job.runs],
        "items": [_item_row(session, item, events_by_item[item.id]) for item in job.items],
        "job_events": events_by_item[None],
        "audit": {
            "chain": chain,
            "events": len(events),
            "head_hash": events[-1].event_hash if events else audit.GENESIS_HASH,
            "intact": not problems,
            "problems": [problem.describe() for problem in problems],
        },
    }


def _run_row(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "number": run.number,
        "state": run.state.value,
        "task": f"{run.task_name}/{run.task_version}",
        "prompt_hash": run.prompt_hash,
        "model_name": run.model_name,
        "created_by": run.created_by,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def _item_row(session: Session, item: Item, events: list[dict[str, Any]]) -> dict[str, Any]:
    item_runs = session.scalars(
        select(ItemRun).where(ItemRun.item_id == item.id).order_by(ItemRun.run_id)
    ).all()
    results = {
        result.run_id: result
        for result in session.scalars(select(Result).where(Result.item_id == item.id))
    }
    return {
        "item_id": item.id,
        "paths": sorted(
            session.scalars(select(ItemSource.path).where(ItemSource.item_id == item.id))
        ),
        "sha256": item.sha256,
        "md5": item.md5,
        "size_bytes": item.size_bytes,
        "media_type": item.media_type,
        "stored_path": item.stored_path,
        "extractor": item.extractor,
        "runs": [_item_run_row(item_run, results.get(item_run.run_id)) for item_run in item_runs],
        "events": events,
    }


def _item_run_row(item_run: ItemRun, result: Result | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run_id": item_run.run_id,
        "state": item_run.state.value,
        "error_code": item_run.error_code,
        "error_message": item_run.error_message,
        "attempts": item_run.attempts,
        "finished_at": item_run.finished_at.isoformat() if item_run.finished_at else None,
    }
    if result is not None:
        row["result"] = {
            "result_id": result.id,
            "produced_by": result.produced_by,
            "model_name": result.model_name,
            "model_sha256": result.model_sha256,
            "prompt_hash": result.prompt_hash,
            "input_sha256": result.input_sha256,
            "created_at": result.created_at.isoformat(),
        }
    return row


def _event_row(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.occurred_at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "run_id": event.run_id,
        "details": event.details,
        "event_hash": event.event_hash,
    }


def custody_csv_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per item and run, for spreadsheets."""
    rows = []
    for item in report["items"]:
        for item_run in item["runs"] or [{}]:
            result = item_run.get("result") or {}
            rows.append(
                {
                    "job_id": report["job"]["id"],
                    "item_id": item["item_id"],
                    "paths": " | ".join(item["paths"]),
                    "sha256": item["sha256"],
                    "md5": item["md5"],
                    "size_bytes": item["size_bytes"],
                    "media_type": item["media_type"],
                    "run_id": item_run.get("run_id"),
                    "state": item_run.get("state"),
                    "error_code": item_run.get("error_code"),
                    "attempts": item_run.get("attempts"),
                    "produced_by": result.get("produced_by"),
                    "model_name": result.get("model_name"),
                    "model_sha256": result.get("model_sha256"),
                    "prompt_hash": result.get("prompt_hash"),
                    "finished_at": item_run.get("finished_at"),
                    "events": len(item["events"]),
                }
            )
    return rows


def all_job_ids(session: Session) -> list[int]:
    """Every job, oldest first."""
    return list(session.scalars(select(Job.id).order_by(Job.id)))
