"""Results as rows: one per submitted path, as JSONL, CSV or a table.

The JSONL row is a contract other tools rely on: ``job_id``, ``run_id``,
``item_id``, ``path``, ``sha256``, ``state``, ``error_code``, ``error_message``
and ``result`` are always present (null where they do not apply).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Item, ItemRun, ItemSource, Result, Run

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
    "citations",
    "model_name",
    "model_sha256",
    "task_name",
    "task_version",
    "prompt_hash",
    "result",
]


def result_rows(session: Session, run: Run) -> Iterator[dict[str, Any]]:
    """One row per submitted path of the run's job, duplicates included."""
    query = (
        select(ItemSource, Item, ItemRun, Result)
        .join(Item, Item.id == ItemSource.item_id)
        .join(ItemRun, (ItemRun.item_id == Item.id) & (ItemRun.run_id == run.id))
        .outerjoin(Result, (Result.item_id == Item.id) & (Result.run_id == run.id))
        .where(ItemSource.job_id == run.job_id)
        .order_by(ItemSource.path)
    )
    for source, item, item_run, result in session.execute(query):
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
            "duplicate": source.path != item.path,
            "duplicate_of": item.path if source.path != item.path else None,
            "page_count": item.page_count,
            "result": result.output if result else None,
            "citations": result.citations if result else None,
            "partials": result.partials if result else None,
            "provenance": _provenance(result) if result else None,
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
