"""Results as rows: one per submitted path, as JSONL, CSV or a table.

The JSONL row is a contract other tools rely on: ``job_id``, ``run_id``,
``item_id``, ``path``, ``sha256``, ``state``, ``error_code``, ``error_message``
and ``result`` are always present (null where they do not apply).

Discovery fields come with every row too: the item's family
(``parent_item_id``, ``family_id``, ``level``, ``ordinal``), who held it
(``custodian`` for this path, ``all_custodians`` and ``all_paths`` for every
path the item was found at), and, for e-mail, its thread (``thread_id``,
``thread_position``, ``inclusive``, ``included_in_item_id``). Rows come in
family order: a family's top document, then its attachments, then the paths
that duplicate it, so a load file never splits a family.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import EmailMessage, Item, ItemRun, ItemSource, Result, Run
from worker import grounding

CSV_COLUMNS = [
    "job_id",
    "run_id",
    "item_id",
    "path",
    "sha256",
    "md5",
    "media_type",
    "size_bytes",
    "state",
    "error_code",
    "error_message",
    "attempts",
    "duplicate",
    "parent_item_id",
    "family_id",
    "level",
    "custodian",
    "all_custodians",
    "thread_id",
    "thread_position",
    "inclusive",
    "citations",
    "quotes",
    "quotes_unverified",
    "model_name",
    "model_sha256",
    "task_name",
    "task_version",
    "prompt_hash",
    "result",
]


def result_rows(session: Session, run: Run) -> Iterator[dict[str, Any]]:
    """One row per path of the run's job, duplicates included, families kept together."""
    query = (
        select(ItemSource, Item, ItemRun, Result, EmailMessage)
        .join(Item, Item.id == ItemSource.item_id)
        .join(ItemRun, (ItemRun.item_id == Item.id) & (ItemRun.run_id == run.id))
        .outerjoin(Result, (Result.item_id == Item.id) & (Result.run_id == run.id))
        .outerjoin(EmailMessage, EmailMessage.item_id == Item.id)
        .where(ItemSource.job_id == run.job_id)
    )
    found = session.execute(query).all()
    holders = _holders(session, run.job_id)
    family_paths = {
        item.id: item.path for _, item, _, _, _ in found if item.family_id in (None, item.id)
    }

    def family_order(row: Any) -> tuple[str, int, bool, str]:
        source, item = row[0], row[1]
        family = item.family_id or item.id
        duplicate = source.path != item.path
        # A duplicate path sorts with the family of the item it repeats.
        return (family_paths.get(family, item.path), family, duplicate, source.path)

    for source, item, item_run, result, message in sorted(found, key=family_order):
        duplicate = source.path != item.path
        custodians, paths = holders.get(item.id, ([], []))
        yield {
            "job_id": run.job_id,
            "run_id": run.id,
            "item_id": item.id,
            "path": source.path,
            "sha256": item.sha256,
            "md5": item.md5,
            "media_type": item.media_type,
            "size_bytes": item.size_bytes,
            "state": item_run.state.value,
            "error_code": item_run.error_code,
            "error_message": item_run.error_message,
            "attempts": item_run.attempts,
            "duplicate": duplicate,
            "duplicate_of": item.path if duplicate else None,
            "parent_item_id": item.parent_id,
            "family_id": item.family_id or item.id,
            "level": item.level,
            "ordinal": item.ordinal,
            "custodian": source.custodian,
            "all_custodians": custodians,
            "all_paths": paths,
            **_email_fields(message),
            "container_counts": _container_counts(item.doc_metadata or {}),
            "page_count": item.page_count,
            "result": result.output if result else None,
            "citations": result.citations if result else None,
            "quotes": None,
            "quotes_unverified": None,
            **grounding.quote_counts(result.grounding if result else None),
            "grounding": result.grounding if result else None,
            "partials": result.partials if result else None,
            "provenance": _provenance(result) if result else None,
        }


def _holders(session: Session, job_id: int) -> dict[int, tuple[list[str], list[str]]]:
    """Per item: every custodian that held it and every path it was found at, sorted."""
    custodians: dict[int, set[str]] = defaultdict(set)
    paths: dict[int, list[str]] = defaultdict(list)
    query = select(ItemSource.item_id, ItemSource.custodian, ItemSource.path).where(
        ItemSource.job_id == job_id
    )
    for item_id, custodian, path in session.execute(query):
        if custodian:
            custodians[item_id].add(custodian)
        paths[item_id].append(path)
    return {
        item_id: (sorted(custodians[item_id]), sorted(found)) for item_id, found in paths.items()
    }


def _container_counts(metadata: dict[str, Any]) -> dict[str, int] | None:
    """A container's expected / extracted / failed counts: messages of a mailbox, files of a ZIP."""
    return metadata.get("messages") or metadata.get("files")


def _email_fields(message: EmailMessage | None) -> dict[str, Any]:
    """The thread fields of an e-mail's row (null for anything else)."""
    if message is None:
        return dict.fromkeys(
            (
                "thread_id",
                "thread_position",
                "inclusive",
                "included_in_item_id",
                "message_id",
                "email_hash",
                "message_id_hash",
            )
        )
    return {
        "thread_id": message.thread_id,
        "thread_position": message.thread_position,
        "inclusive": message.inclusive,
        "included_in_item_id": message.included_in_item_id,
        "message_id": message.message_id,
        "email_hash": message.email_hash,
        "message_id_hash": message.message_id_hash,
    }


def _provenance(result: Result) -> dict[str, Any]:
    return {
        "input_sha256": result.input_sha256,
        "model_name": result.model_name,
        "model_sha256": result.model_sha256,
        "task_name": result.task_name,
        "task_version": result.task_version,
        "prompt_hash": result.prompt_hash,
        "output_sha256": result.output_sha256,
        "runtime": result.runtime,
        "sampling": result.sampling,
        "seed": result.seed,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "model_calls": result.model_calls,
        "timings": result.timings,
        "extractor": result.extractor,
        "inputs": result.inputs,
        "produced_by": result.produced_by,
        "created_at": result.created_at.isoformat(),
    }


def write_jsonl(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    """Write rows as JSON lines; return how many."""
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def csv_record(row: dict[str, Any]) -> dict[str, str]:
    """A row flattened for CSV: nested values as compact JSON."""
    provenance = row.get("provenance") or {}
    flat = {
        **row,
        **{
            key: provenance.get(key)
            for key in ("model_name", "model_sha256", "task_name", "task_version", "prompt_hash")
        },
    }
    record: dict[str, str] = {}
    for column in CSV_COLUMNS:
        value = flat.get(column)
        if value is None:
            record[column] = ""
        elif isinstance(value, (dict, list)):
            record[column] = json.dumps(value, ensure_ascii=False, sort_keys=True)
        else:
            record[column] = str(value)
    return record


def write_csv(rows: Iterator[dict[str, Any]], out: TextIO) -> int:
    """Write rows as CSV with a header; return how many."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow(csv_record(row))
        count += 1
    return count


def result_preview(result: dict[str, Any] | None, width: int = 90) -> str:
    """A one-line view of a result for tables."""
    if not result:
        return ""
    for key in ("summary", "label", "answer"):
        if isinstance(result.get(key), str):
            text = result[key]
            break
    else:
        text = json.dumps(result, ensure_ascii=False, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
