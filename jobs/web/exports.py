"""Exports started from the console or the API: written in the background, then downloaded.

Results (JSONL or CSV, as ``sieve results``) and the chain-of-custody report
(JSON, as ``sieve audit export``) are written to ``DATA_DIR/exports`` by a
background thread, so a large job does not hold a request open; the caller
watches the export's state and downloads the file when it is done. Which
exports exist is kept in memory: a file outlives a restart, its entry not.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
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
    state: str = "running"  # running, done or failed
    rows: int = 0
    error: str | None = None
    path: Path | None = None

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
    exports: dict[int, Export] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, job_id: int, export_format: str, requested_by: str) -> Export:
        if export_format not in FORMATS:
            raise errors.UsageError(f"format {export_format!r}: one of {', '.join(FORMATS)}")
        with self._lock:
            export = Export(next(self._ids), job_id, export_format, requested_by)
            self.exports[export.id] = export
        threading.Thread(target=self._write, args=(export,), daemon=True).start()
        return export

    def get(self, export_id: int) -> Export:
        export = self.exports.get(export_id)
        if export is None:
            raise errors.NotFoundError(f"no export with id {export_id}")
        return export

    def _write(self, export: Export) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / f"job{export.job_id}-export{export.id}{FORMATS[export.format][1]}"
        partial = target.with_suffix(target.suffix + ".partial")
        try:
            with self.session_factory() as session, partial.open("w", encoding="utf-8") as out:
                export.rows = self._write_rows(session, export, out)
            partial.replace(target)
            export.path, export.state = target, "done"
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
