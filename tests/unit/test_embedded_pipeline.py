"""The pipeline in embedded mode (SQLite, in process) with the real small model."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db import audit, migrate
from db.base import utcnow
from db.models import AuditEvent, ItemRun, ItemState, Result, Run, RunState
from db.session import make_engine, make_session_factory
from jobs import embedded, submit
from worker.pipeline import PipelineContext, process_item_run
from jobs.settings import ModelSettings, Settings
from worker.task_specs import build_task
from tests import pdfgen
from worker import errors
from worker.model import Completion, LocalModel

pytestmark = pytest.mark.model


@dataclass
class Embedded:
    settings: Settings
    session_factory: sessionmaker[Session]
    context: PipelineContext


@pytest.fixture
def embedded_env(tmp_path: Path, small_model: LocalModel,
                 small_model_settings: ModelSettings) -> Iterator[Embedded]:
    settings = Settings(data_dir=tmp_path / "data", model=small_model_settings)
    migrate.upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    context = PipelineContext(settings, factory, small_model, "test-worker@host:1")
    yield Embedded(settings, factory, context)
    engine.dispose()


def _submit(env: Embedded, folder: Path) -> submit.Submission:
    task = build_task("summarize", {}, env.settings.model.max_text_chars)
    return submit.submit(env.session_factory, env.settings, paths=[folder], task=task,
                         name="unit", executor="in_process")


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "memo.pdf", pdfgen.MEMO_PAGES, title="Memo")
    shutil.copy(folder / "memo.pdf", folder / "memo-again.pdf")
    pdfgen.make_corrupt_pdf(folder / "broken.pdf")
    (folder / "nothing.pdf").write_bytes(b"")
    return folder


def _states(env: Embedded, run_id: int) -> dict[str, tuple[str, str | None]]:
    with env.session_factory() as session:
        rows = session.execute(
            select(ItemRun).where(ItemRun.run_id == run_id)
        ).scalars().all()
        return {Path(r.item.path).name: (r.state.value, r.error_code) for r in rows}


def test_a_folder_is_processed_in_process_and_the_run_completes(embedded_env: Embedded,
                                                                small_set: Path) -> None:
    submission = _submit(embedded_env, small_set)
    assert (submission.file_count, submission.item_count) == (4, 3)
    embedded.run_item_runs(embedded_env.context, submission.item_run_ids)
    assert _states(embedded_env, submission.run_id) == {
        "broken.pdf": ("failed", "corrupt_file"),
        "memo-again.pdf": ("done", None),  # first path of that content, in walk order
        "nothing.pdf": ("failed", "empty_file"),
    }
    with embedded_env.session_factory() as session:
        run = session.get(Run, submission.run_id)
        assert run is not None and run.state == RunState.completed
        assert audit.verify_chain(session, audit.chain_name(submission.job_id)) is None


def test_processing_a_finished_item_again_changes_nothing(embedded_env: Embedded,
                                                          small_set: Path) -> None:
    submission = _submit(embedded_env, small_set)
    embedded.run_item_runs(embedded_env.context, submission.item_run_ids)
    with embedded_env.session_factory() as session:
        events_before = session.scalar(select(func.count()).select_from(AuditEvent))
    for item_run_id in submission.item_run_ids:  # a redelivered message for each
        assert process_item_run(embedded_env.context, item_run_id).state is None
    with embedded_env.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == events_before
        assert session.scalar(select(func.count()).select_from(Result)) == 1


def _one_pdf(folder: Path) -> Path:
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "letter.pdf", [pdfgen.LETTER_PAGE])
    return folder


def test_an_item_leased_by_a_live_worker_is_left_alone(embedded_env: Embedded,
                                                       tmp_path: Path) -> None:
    submission = _submit(embedded_env, _one_pdf(tmp_path / "one"))
    [item_run_id] = submission.item_run_ids
    with embedded_env.session_factory.begin() as session:
        session.execute(update(ItemRun).where(ItemRun.id == item_run_id).values(
            state=ItemState.running, lease_owner="other@host:2", attempts=1,
            lease_expires_at=utcnow() + dt.timedelta(minutes=5)))
    assert process_item_run(embedded_env.context, item_run_id).state is None
    assert _states(embedded_env, submission.run_id)["letter.pdf"] == ("running", None)


def test_an_item_whose_lease_expired_is_taken_over_and_counted_as_a_second_attempt(
    embedded_env: Embedded, tmp_path: Path
) -> None:
    submission = _submit(embedded_env, _one_pdf(tmp_path / "one"))
    [item_run_id] = submission.item_run_ids
    with embedded_env.session_factory.begin() as session:
        session.execute(update(ItemRun).where(ItemRun.id == item_run_id).values(
            state=ItemState.running, lease_owner="dead@host:2", attempts=1,
            lease_expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert process_item_run(embedded_env.context, item_run_id).state == ItemState.done
    with embedded_env.session_factory() as session:
        item_run = session.get(ItemRun, item_run_id)
        assert item_run is not None and item_run.attempts == 2 and item_run.lease_owner is None


class _TakeOverDuringCall:
    """The real model, but another worker steals the lease while it thinks."""

    def __init__(self, model: LocalModel, factory: sessionmaker[Session], item_run_id: int) -> None:
        self._model, self._factory, self._item_run_id = model, factory, item_run_id
        self.info, self.sampling, self.seed = model.info, model.sampling, model.seed
        self.context_tokens, self.image_tokens = model.context_tokens, model.image_tokens
        self.count_tokens, self.truncate_to_tokens = model.count_tokens, model.truncate_to_tokens

    def complete_json(self, *args: Any, **kwargs: Any) -> Completion:
        completion = self._model.complete_json(*args, **kwargs)
        with self._factory.begin() as session:
            session.execute(update(ItemRun).where(ItemRun.id == self._item_run_id)
                            .values(lease_owner="thief@host:3"))
        return completion


def test_a_worker_that_lost_its_lease_stores_nothing(embedded_env: Embedded, tmp_path: Path) -> None:
    submission = _submit(embedded_env, _one_pdf(tmp_path / "one"))
    [item_run_id] = submission.item_run_ids
    model = _TakeOverDuringCall(embedded_env.context.model, embedded_env.session_factory,
                                item_run_id)
    context = replace(embedded_env.context, model=model)
    assert process_item_run(context, item_run_id).state is None
    with embedded_env.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Result)) == 0


class _FailingModel(_TakeOverDuringCall):
    """The real model's metadata, with a call that raises what the test needs."""

    def __init__(self, model: LocalModel, failures: list[BaseException]) -> None:
        super().__init__(model, None, 0)  # type: ignore[arg-type]
        self._failures = failures

    def complete_json(self, *args: Any, **kwargs: Any) -> Completion:
        if self._failures:
            raise self._failures.pop(0)
        return self._model.complete_json(*args, **kwargs)


def test_a_transient_error_is_retried_and_a_bug_is_recorded_as_internal_with_its_traceback(
    embedded_env: Embedded, tmp_path: Path
) -> None:
    submission = _submit(embedded_env, _one_pdf(tmp_path / "one"))
    [item_run_id] = submission.item_run_ids
    flaky = replace(embedded_env.context, model=_FailingModel(
        embedded_env.context.model, [errors.ToolTimeoutError("slow tool"), KeyError("oops")]))
    first = process_item_run(flaky, item_run_id)
    assert (first.state, first.error_code, first.retry) == (ItemState.queued, "tool_timeout", True)
    second = process_item_run(flaky, item_run_id)
    assert (second.state, second.error_code, second.retry) == (ItemState.failed, "internal", False)
    with embedded_env.session_factory() as session:
        item_run = session.get(ItemRun, item_run_id)
        assert item_run is not None and item_run.attempts == 2
        assert "KeyError" in (item_run.error_detail or "")
        assert "Traceback" in (item_run.error_detail or "")
