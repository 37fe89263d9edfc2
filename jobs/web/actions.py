"""What the console and the API do on an admin's behalf: submit, re-run, pause, cancel.

The same operations as the CLI's (``jobs.submit``, ``jobs.reruns``,
``worker.recovery``), recorded under the signed-in user's name. Where workers
serve the database the new item runs are published to the broker; on the
embedded default (SQLite, no broker) one background thread of the server
runs them with a model loaded once, as ``sieve run`` would.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import ItemRun, ItemState, Run
from jobs import commands, item_filter, reruns
from jobs.settings import Settings
from jobs.submit import RunOptions, Submission, ingest_stream, submit, submit_ingested
from worker import errors, recovery
from worker.task_specs import TaskSpec, build_task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskRequest:
    """A task as a form or a JSON body names it."""

    name: str = "summarize"
    labels: Sequence[str] = ()
    prompt: str | None = None
    schema: dict[str, Any] | None = None
    case: str | None = None

    def build(self, settings: Settings) -> TaskSpec:
        options: dict[str, Any] = {}
        if self.labels:
            options["labels"] = [label.strip() for label in self.labels if label.strip()]
        if self.prompt:
            options["prompt"] = self.prompt
        if self.schema is not None:
            options["schema"] = self.schema
        if self.case:
            options["case"] = self.case
        try:
            return build_task(self.name, options, settings.model.max_text_chars)
        except errors.ConfigurationError as exc:  # the request named it: the caller's mistake
            raise errors.UsageError(exc.message) from exc


class InProcessRunner:
    """One background thread that runs recorded item runs here, for the embedded default."""

    def __init__(self, settings: Settings, session_factory: sessionmaker[Session]) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self._waiting: queue.Queue[list[int]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, item_run_ids: list[int]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="sieve-web-run", daemon=True
                )
                self._thread.start()
        self._waiting.put(item_run_ids)

    def _loop(self) -> None:
        from jobs.embedded import build_in_process_context, run_item_runs

        context = build_in_process_context(self.settings, self.session_factory)
        while True:
            item_run_ids = self._waiting.get()
            try:
                run_item_runs(context, item_run_ids)
            except Exception:  # a database gone away: the items stay pending for resume
                logger.exception("in-process run of %d item(s) stopped", len(item_run_ids))


class Actions:
    """The state-changing operations, bound to one server's settings and database."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        run_in_process: Callable[[list[int]], None] | None = None,
    ) -> None:
        """``run_in_process`` replaces the background runner on the embedded default."""
        self.settings = settings
        self.session_factory = session_factory
        self.in_process = settings.database_url is None
        self._run_here = run_in_process
        if self.in_process and run_in_process is None:
            self._run_here = InProcessRunner(settings, session_factory).run

    def _hand_over(self, item_run_ids: list[int], what: str, job_id: int, actor: str) -> None:
        if self.in_process and self._run_here is not None:
            self._run_here(item_run_ids)
            return
        commands.publish_recorded(
            self.settings, self.session_factory, item_run_ids, what, job_id, actor
        )

    def submit_paths(
        self,
        paths: Sequence[Path],
        task: TaskRequest,
        name: str | None,
        options: RunOptions,
        actor: str,
    ) -> Submission:
        """Submit files or folders on the server's disk; their items are queued.

        With ``web.submit_roots`` set, only paths inside those folders are taken
        (checked before existence, so a refusal says nothing of what lies outside).
        """
        for path in paths:
            if "\x00" in str(path) or not path.is_absolute():
                raise errors.UsageError(
                    f"{str(path)!r}: a server path is absolute and has no NUL character"
                )
        self._check_roots(paths)
        missing = [str(path) for path in paths if not path.exists()]
        if missing:
            raise errors.UsageError(f"no such file or folder on the server: {', '.join(missing)}")
        return self._submit(paths, task, name, options, actor)

    def _check_roots(self, paths: Sequence[Path]) -> None:
        roots = [root.resolve() for root in self.settings.web.submit_roots]
        if not roots:
            return
        outside = [
            str(path)
            for path in paths
            if not any(path.resolve().is_relative_to(root) for root in roots)
        ]
        if outside:
            allowed = ", ".join(str(root) for root in roots)
            raise errors.ForbiddenError(
                f"{', '.join(outside)}: outside the folders this server submits from ({allowed})"
            )

    def _submit(
        self,
        paths: Sequence[Path],
        task: TaskRequest,
        name: str | None,
        options: RunOptions,
        actor: str,
    ) -> Submission:
        submission = submit(
            self.session_factory,
            self.settings,
            paths=paths,
            task=task.build(self.settings),
            name=name,
            executor=self._executor,
            options=options,
            actor=actor,
        )
        self._hand_over_submission(submission, actor)
        return submission

    @property
    def _executor(self) -> str:
        return "in_process" if self.in_process else "celery"

    def _hand_over_submission(self, submission: Submission, actor: str) -> None:
        self._hand_over(
            submission.item_run_ids, f"job {submission.job_id}", submission.job_id, actor
        )

    def submit_uploads(
        self,
        uploads: Sequence[tuple[str, BinaryIO]],
        task: TaskRequest,
        name: str | None,
        options: RunOptions,
        actor: str,
    ) -> Submission:
        """Copy uploaded files into the content store, hashing as they come, and submit them.

        ``uploads`` are the request's parts as the multipart parser spooled
        them (Starlette: memory up to 1 MiB, then a temporary file it removes);
        from there each is copied once, into the store, with no scratch folder
        of Sieve's to leak. Each is recorded as ``upload/NAME`` (the client's
        name reduced to a safe base name, numbered when two collide). When a
        later file is refused, the ones already stored stay in the store with
        no item pointing at them: the store never deletes, since another job
        may have ingested the same bytes meanwhile.
        """
        if not uploads:
            raise errors.UsageError("no files were uploaded")
        recorded_names: set[str] = set()
        files = []
        for filename, stream in uploads:
            recorded = upload_name(filename, recorded_names)
            recorded_names.add(recorded)
            try:
                files.append(
                    ingest_stream(
                        Path("upload") / recorded,
                        stream,
                        self.settings,
                        max_bytes=self.settings.web.upload_max_bytes,
                    )
                )
            except errors.LimitExceededError as exc:
                raise errors.LimitExceededError(f"{recorded}: {exc}") from exc
        submission = submit_ingested(
            self.session_factory,
            self.settings,
            files=files,
            roots=(),
            task=task.build(self.settings),
            name=name or "upload",
            executor=self._executor,
            options=options,
            actor=actor,
        )
        self._hand_over_submission(submission, actor)
        return submission

    def rerun(
        self,
        job_id: int,
        *,
        actor: str,
        run_number: int | None = None,
        failed_only: bool = False,
        where: str | None = None,
        task: TaskRequest | None = None,
        priority: str = "normal",
        deterministic: bool = False,
        model_path: str | None = None,
    ) -> reruns.Rerun:
        """A new run of ``job_id`` over the selected items, queued.

        ``model_path`` (a GGUF on the server) runs them with another model, as
        ``sieve rerun --model``; the workers that serve it take them.
        """
        model = None
        if model_path is not None:
            if self.in_process:
                raise errors.UsageError(
                    "a re-run with another model needs workers; on the embedded default "
                    "use `sieve rerun --model`"
                )
            if not Path(model_path).is_file():
                raise errors.UsageError(f"no model file {model_path} on the server")
            model = self.settings.model.model_copy(
                update={"path": Path(model_path), "name": None, "mmproj_path": None}
            )
        request = reruns.RerunRequest(
            job_id=job_id,
            base_run_number=run_number,
            failed_only=failed_only,
            where=item_filter.parse(where) if where else None,
            task=task.build(self.settings) if task is not None else None,
            deterministic=deterministic,
            priority=priority,
            model=model,
        )
        made = reruns.record_rerun(
            self.session_factory,
            request,
            actor=actor,
            executor=self._executor,
        )
        self._hand_over(
            made.item_run_ids, f"run {made.number} of job {made.job_id}", made.job_id, actor
        )
        return made

    def set_paused(self, job_id: int, paused: bool, actor: str) -> bool:
        """Pause or unpause ``job_id``; on unpausing, the items the pause held back run again.

        With workers they are re-published (as ``sieve unpause``); on the
        embedded default they go back to this server's runner, since a paused
        item it was handed went back to ``pending`` and nothing else would.
        """
        changed = recovery.set_job_paused(self.session_factory, job_id, actor, paused)
        if not changed or paused:
            return changed
        if self.in_process:
            waiting = self._pending_item_runs(job_id)
            if waiting:
                self._hand_over(waiting, f"job {job_id}", job_id, actor)
        else:
            recovery.resume(commands.dispatcher(self.settings), self.session_factory, actor, job_id)
        return changed

    def _pending_item_runs(self, job_id: int) -> list[int]:
        with self.session_factory() as session:
            return list(
                session.scalars(
                    select(ItemRun.id)
                    .join(Run, Run.id == ItemRun.run_id)
                    .where(Run.job_id == job_id, ItemRun.state == ItemState.pending)
                    .order_by(ItemRun.id)
                )
            )

    def cancel(self, job_id: int, actor: str) -> recovery.CancelReport:
        commands.require_job(self.session_factory, job_id)
        return recovery.cancel_job(self.session_factory, job_id, actor)


def upload_name(filename: str, taken: set[str]) -> str:
    """A safe base name for an uploaded file: no directories, no control characters.

    A client's name may hold a path (``..\\..\\boot.ini``), control
    characters or nothing at all; only its printable base name is kept, with
    leading dots dropped, and a number in front when ``taken`` already has it.
    """
    printable = "".join(ch for ch in filename if ch.isprintable())
    safe_name = Path(printable.replace("\\", "/")).name.lstrip(".")[:200] or "upload"
    candidate = safe_name
    counter = 1
    while candidate in taken:
        candidate = f"{counter}-{safe_name}"
        counter += 1
    return candidate
