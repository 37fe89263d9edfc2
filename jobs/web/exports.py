"""Exports started from the console or the API: written in the background, then downloaded.

Results (JSONL or CSV, as ``sieve results``) and the chain-of-custody report
(JSON, as ``sieve audit export``) are written to ``DATA_DIR/exports`` by a
background thread, so a large job does not hold a request open; the caller
watches the export's state and downloads the file when it is done.

At most ``max_running`` exports are written at once (the rest wait their
turn, ``queued``), and a file is kept ``keep_s`` after it was written, then
removed (``expired``): exports hold document content, and a folder of old
copies nobody asked to keep is a liability. Which exports exist is kept in
memory; the files of a previous server are removed when the next one starts.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from jobs import custody
from jobs import results as results_module
from jobs import status as status_module
from worker import errors

logger = logging.getLogger(__name__)

FORMATS = {
    "jsonl": ("application/x-ndjson", ".jsonl"),
    "csv": ("text/csv; charset=utf-8", ".csv"),
    "custody": ("application/json", ".json"),
}
CONTENT_FORMATS = frozenset({"jsonl", "csv"})  # hold document content: readers only


@dataclass
class Export:
    id: int
    job_id: int
    format: str
    requested_by: str
    state: str = "queued"  # queued, running, done, failed or expired
    rows: int = 0
    error: str | None = None
    path: Path | None = None
    finished_at: float | None = None  # time.monotonic() when written

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "job_id": self.job_id,
            "format": self.format,
            "state": self.state,
            "rows": self.rows,
            "error": self.error,
            "requested_by": self.requested_by,
            "download": f"/api/exports/{self.id}/download" if self.state == "done" else None,
        }


@dataclass
class ExportRegistry:
    directory: Path
    session_factory: sessionmaker[Session]
    max_running: int = 2
    keep_s: float = 24 * 3600.0
    exports: dict[int, Export] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pool: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        self._pool = ThreadPoolExecutor(self.max_running, thread_name_prefix="sieve-export")
        self._remove_leftovers()

    def start(self, job_id: int, export_format: str, requested_by: str) -> Export:
        if export_format not in FORMATS:
            raise errors.UsageError(f"format {export_format!r}: one of {', '.join(FORMATS)}")
        self.expire()
        with self._lock:
            export = Export(next(self._ids), job_id, export_format, requested_by)
            self.exports[export.id] = export
        assert self._pool is not None
        self._pool.submit(self._write, export)
        return export

    def get(self, export_id: int) -> Export:
        self.expire()
        export = self.exports.get(export_id)
        if export is None:
            raise errors.NotFoundError(f"no export with id {export_id}")
        return export

    def expire(self, now: float | None = None) -> None:
        """Remove the files of exports written more than ``keep_s`` ago."""
        now = time.monotonic() if now is None else now
        with self._lock:
            old = [
                export
                for export in self.exports.values()
                if export.state == "done"
                and export.finished_at is not None
                and now - export.finished_at > self.keep_s
            ]
            for export in old:
                if export.path is not None:
                    export.path.unlink(missing_ok=True)
                export.path, export.state = None, "expired"

    def _remove_leftovers(self) -> None:
        """A previous server's files: no entry leads to them any more."""
        if not self.directory.is_dir():
            return
        for leftover in self.directory.glob("job*-export*"):
            leftover.unlink(missing_ok=True)

    def _write(self, export: Export) -> None:
        export.state = "running"
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"job{export.job_id}-export{export.id}{FORMATS[export.format][1]}"
        partial = target.with_suffix(target.suffix + ".partial")
        try:
            with self.session_factory() as session, partial.open("w", encoding="utf-8") as out:
                export.rows = self._write_rows(session, export, out)
            partial.replace(target)
            export.path, export.state = target, "done"
            export.finished_at = time.monotonic()
        except Exception as exc:  # reported on the export, not lost in a thread
            partial.unlink(missing_ok=True)
            logger.exception("export %d of job %d failed", export.id, export.job_id)
            code = exc.code if isinstance(exc, errors.SieveError) else errors.InternalError.code
            export.state, export.error = "failed", f"{code} (the server's log has the detail)"

    @staticmethod
    def _write_rows(session: Session, export: Export, out: Any) -> int:
        if export.format == "custody":
            report = custody.custody_report(session, export.job_id)
            json.dump(report, out, indent=2, ensure_ascii=False)
            return len(report.get("items", []))
        run = status_module.resolve_run(session, export.job_id, None)
        rows = results_module.result_rows(session, run)
        if export.format == "jsonl":
            return results_module.write_jsonl(rows, out)
        return results_module.write_csv(rows, out)
