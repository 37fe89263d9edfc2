"""The pipeline in embedded mode (SQLite, in process) with the fake model: no services, no GGUF.

Claims and leases, retries and their budget, internal errors, map-reduce, the
context-too-small error, cancellation through the heartbeat and the
database-error split all run here in milliseconds. The same pipeline with the
real model, PostgreSQL and a Celery worker is in ``tests/integration/``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from db import audit, migrate
from db.base import utcnow
from db.models import AuditEvent, Item, ItemRun, ItemState, Result, Run, RunState, StoredSegment
from db.session import make_engine, make_session_factory
from jobs import embedded, submit
from jobs.settings import Settings
from tests import pdfgen
from tests.fake_model import FakeModel
from worker import errors, recovery
from worker.config import LimitSettings, ModelSettings, WorkerSettings
from worker.pipeline import PipelineContext, process_item_run
from worker.task_specs import build_task


@dataclass
class Embedded:
    settings: Settings
    session_factory: sessionmaker[Session]
    context: PipelineContext
    model: FakeModel

    def with_model(self, model: FakeModel) -> PipelineContext:
        return replace(self.context, model=model)


def make_embedded(tmp_path: Path, model: FakeModel, **worker: object) -> Iterator[Embedded]:
    settings = Settings(
        data_dir=tmp_path / "data",
        model=ModelSettings(max_text_chars=80, max_output_tokens=40),
        # In-process extraction: the sandbox has its own tests, and a child per item costs 1 s.
        limits=LimitSettings(sandbox=False),
        worker=WorkerSettings(**worker),  # type: ignore[arg-type]
    )
    migrate.upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    factory = make_session_factory(engine)
    context = PipelineContext(settings, factory, model, "test-worker@host:1")
    yield Embedded(settings, factory, context, model)
    engine.dispose()


@pytest.fixture
def embedded_env(tmp_path: Path) -> Iterator[Embedded]:
    yield from make_embedded(tmp_path, FakeModel())


def _submit(env: Embedded, folder: Path, task_name: str = "summarize") -> submit.Submission:
    task = build_task(task_name, {}, env.settings.model.max_text_chars)
    return submit.submit(
        env.session_factory,
        env.settings,
        paths=[folder],
        task=task,
        name="unit",
        executor="in_process",
    )


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "memo.pdf", pdfgen.MEMO_PAGES, title="Memo")
    shutil.copy(folder / "memo.pdf", folder / "memo-again.pdf")
    pdfgen.make_corrupt_pdf(folder / "broken.pdf")
    (folder / "nothing.pdf").write_bytes(b"")
    return folder


def _one_pdf(folder: Path, pages: list[str] | None = None) -> Path:
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "letter.pdf", pages or [pdfgen.LETTER_PAGE])
    return folder


def _item_run(env: Embedded, item_run_id: int) -> ItemRun:
    with env.session_factory() as session:
        item_run = session.get(ItemRun, item_run_id)
        assert item_run is not None
        return item_run


def _states(env: Embedded, run_id: int) -> dict[str, tuple[str, str | None]]:
    with env.session_factory() as session:
        rows = session.scalars(select(ItemRun).where(ItemRun.run_id == run_id)).all()
        return {Path(r.item.path).name: (r.state.value, r.error_code) for r in rows}


def _result_count(env: Embedded) -> int:
    with env.session_factory() as session:
        return session.scalar(select(func.count()).select_from(Result)) or 0


def _chain_intact(env: Embedded, job_id: int) -> bool:
    with env.session_factory() as session:
        return audit.verify_chain(session, audit.chain_name(job_id)) is None


# --- the happy path and idempotency -------------------------------------------


def test_a_folder_is_processed_in_process_and_the_run_completes(
    embedded_env: Embedded, small_set: Path
) -> None:
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
    assert _chain_intact(embedded_env, submission.job_id)


def test_processing_a_finished_item_again_changes_nothing(
    embedded_env: Embedded, small_set: Path
) -> None:
    submission = _submit(embedded_env, small_set)
    embedded.run_item_runs(embedded_env.context, submission.item_run_ids)
    with embedded_env.session_factory() as session:
        events_before = session.scalar(select(func.count()).select_from(AuditEvent))
    for item_run_id in submission.item_run_ids:  # a redelivered message for each
        assert process_item_run(embedded_env.context, item_run_id).state is None
    with embedded_env.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == events_before
    assert _result_count(embedded_env) == 1


# --- leases ---------------------------------------------------------------------


def _lease(
    env: Embedded, item_run_id: int, owner: str, expires_in_s: float, attempts: int = 1
) -> None:
    with env.session_factory.begin() as session:
        session.execute(
            update(ItemRun)
            .where(ItemRun.id == item_run_id)
            .values(
                state=ItemState.running,
                lease_owner=owner,
                attempts=attempts,
                lease_expires_at=utcnow() + dt.timedelta(seconds=expires_in_s),
            )
        )


def test_an_item_leased_by_a_live_worker_is_left_alone(
    embedded_env: Embedded, tmp_path: Path
) -> None:
    [item_run_id] = _submit(embedded_env, _one_pdf(tmp_path / "one")).item_run_ids
    _lease(embedded_env, item_run_id, "other@elsewhere:2", 300)
    outcome = process_item_run(embedded_env.context, item_run_id)
    assert outcome.state is None and outcome.retry and 295 < (outcome.retry_after_s or 0) <= 302
    assert _item_run(embedded_env, item_run_id).state == ItemState.running


def test_an_item_whose_lease_expired_is_taken_over_and_counted_as_a_second_attempt(
    embedded_env: Embedded, tmp_path: Path
) -> None:
    submission = _submit(embedded_env, _one_pdf(tmp_path / "one"))
    [item_run_id] = submission.item_run_ids
    _lease(embedded_env, item_run_id, "dead@elsewhere:2", -1)
    assert process_item_run(embedded_env.context, item_run_id).state == ItemState.done
    item_run = _item_run(embedded_env, item_run_id)
    assert item_run.attempts == 2 and item_run.lease_owner is None
    with embedded_env.session_factory() as session:
        takeover = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "item.state", AuditEvent.item_id == item_run.item_id
            )
        ).all()
    assert any(e.details.get("taken_over_from") == "dead@elsewhere:2" for e in takeover)
    assert _chain_intact(embedded_env, submission.job_id)


def test_a_worker_that_lost_its_lease_during_a_model_call_stores_nothing(
    embedded_env: Embedded, tmp_path: Path
) -> None:
    [item_run_id] = _submit(embedded_env, _one_pdf(tmp_path / "one")).item_run_ids

    def steal() -> None:
        with embedded_env.session_factory.begin() as session:
            session.execute(
                update(ItemRun).where(ItemRun.id == item_run_id).values(lease_owner="thief@host:3")
            )

    context = embedded_env.with_model(FakeModel(script={1: steal}))
    assert process_item_run(context, item_run_id).state is None
    assert _result_count(embedded_env) == 0


def test_the_heartbeat_keeps_the_lease_alive_during_a_long_call(tmp_path: Path) -> None:
    env_iter = make_embedded(tmp_path, FakeModel(), lease_s=0.3)
    env = next(env_iter)
    [item_run_id] = _submit(env, _one_pdf(tmp_path / "one")).item_run_ids
    seen_expiries: list[dt.datetime] = []

    def think() -> None:
        for _ in range(4):
            time.sleep(0.25)
            seen_expiries.append(_item_run(env, item_run_id).lease_expires_at)  # type: ignore[arg-type]

    outcome = process_item_run(env.with_model(FakeModel(script={1: think})), item_run_id)
    assert outcome.state == ItemState.done  # a 1 s call outlived a 0.3 s lease
    assert len(set(seen_expiries)) >= 2  # renewed while the call ran


def test_a_job_cancelled_mid_item_is_abandoned_at_the_next_lease_renewal(tmp_path: Path) -> None:
    env = next(make_embedded(tmp_path, FakeModel(), lease_s=0.3))
    submission = _submit(env, _one_pdf(tmp_path / "one"))
    [item_run_id] = submission.item_run_ids

    def cancel_then_keep_thinking() -> None:
        recovery.cancel_job(env.session_factory, submission.job_id, "admin")
        time.sleep(0.5)  # several heartbeats (every 0.1 s) while the call runs on

    model = FakeModel(script={1: cancel_then_keep_thinking})
    outcome = process_item_run(env.with_model(model), item_run_id)
    assert outcome.state is None  # abandoned, nothing recorded by the worker
    assert len(model.calls) == 1  # no further call once the lease was found lost
    assert _item_run(env, item_run_id).state == ItemState.cancelled
    assert _result_count(env) == 0
    assert _chain_intact(env, submission.job_id)


# --- retries, the budget, and errors ------------------------------------------------


def _raise(error: BaseException):  # type: ignore[no-untyped-def]
    def raiser() -> None:
        raise error

    return raiser


def test_a_transient_error_is_retried_and_a_bug_is_recorded_as_internal_with_its_traceback(
    embedded_env: Embedded, tmp_path: Path
) -> None:
    [item_run_id] = _submit(embedded_env, _one_pdf(tmp_path / "one")).item_run_ids
    flaky = embedded_env.with_model(
        FakeModel(
            script={1: _raise(errors.ToolTimeoutError("slow tool")), 2: _raise(KeyError("oops"))}
        )
    )
    first = process_item_run(flaky, item_run_id)
    assert (first.state, first.error_code, first.retry) == (ItemState.queued, "tool_timeout", True)
    second = process_item_run(flaky, item_run_id)
    assert (second.state, second.error_code, second.retry) == (ItemState.failed, "internal", False)
    item_run = _item_run(embedded_env, item_run_id)
    assert item_run.attempts == 2
    assert "KeyError" in (item_run.error_detail or "") and "Traceback" in (
        item_run.error_detail or ""
    )


def test_an_item_that_keeps_failing_transiently_ends_retries_exhausted(tmp_path: Path) -> None:
    env = next(make_embedded(tmp_path, FakeModel(), max_attempts=3))
    submission = _submit(env, _one_pdf(tmp_path / "one"))
    always_slow = FakeModel(
        script={n: _raise(errors.ToolTimeoutError(f"slow {n}")) for n in range(1, 10)}
    )
    [outcome] = embedded.run_item_runs(env.with_model(always_slow), submission.item_run_ids)
    assert (outcome.state, outcome.error_code) == (ItemState.failed, "retries_exhausted")
    item_run = _item_run(env, outcome.item_run_id)
    assert item_run.attempts == 3 and len(always_slow.calls) == 3
    assert "last error: tool_timeout: slow 3" in (item_run.error_message or "")
    assert _chain_intact(env, submission.job_id)


def test_an_item_whose_budget_was_spent_by_dead_workers_is_not_tried_again(
    embedded_env: Embedded, tmp_path: Path
) -> None:
    [item_run_id] = _submit(embedded_env, _one_pdf(tmp_path / "one")).item_run_ids
    _lease(
        embedded_env,
        item_run_id,
        "dead@elsewhere:9",
        -1,
        attempts=embedded_env.settings.worker.max_attempts,
    )
    outcome = process_item_run(embedded_env.context, item_run_id)
    assert (outcome.state, outcome.error_code) == (ItemState.failed, "retries_exhausted")
    assert embedded_env.model.calls == []
    assert "never finished" in (_item_run(embedded_env, item_run_id).error_message or "")


def test_a_database_that_refuses_the_items_data_fails_that_item_and_does_not_loop(
    embedded_env: Embedded, tmp_path: Path
) -> None:
    [item_run_id] = _submit(embedded_env, _one_pdf(tmp_path / "one")).item_run_ids
    refused = sa_exc.DataError(
        "INSERT …", {}, Exception("value too long for type character varying(64)")
    )
    outcome = process_item_run(
        embedded_env.with_model(FakeModel(script={1: _raise(refused)})), item_run_id
    )
    assert (outcome.state, outcome.error_code, outcome.retry) == (
        ItemState.failed,
        "database_rejected",
        False,
    )
    assert "value too long" in (_item_run(embedded_env, item_run_id).error_message or "")


def test_a_database_that_is_away_is_raised_for_the_caller_to_retry(
    embedded_env: Embedded, tmp_path: Path
) -> None:
    [item_run_id] = _submit(embedded_env, _one_pdf(tmp_path / "one")).item_run_ids
    away = sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    with pytest.raises(errors.DatabaseUnavailableError, match="server closed"):
        process_item_run(embedded_env.with_model(FakeModel(script={1: _raise(away)})), item_run_id)
    # Nothing was recorded: the lease is still ours, and the next delivery resumes the
    # same attempt (a database outage does not spend the item's retry budget).
    assert process_item_run(embedded_env.context, item_run_id).state == ItemState.done
    assert _item_run(embedded_env, item_run_id).attempts == 1


# --- what reaches the database --------------------------------------------------------


def test_nul_characters_are_replaced_before_storage_and_the_item_says_so(
    embedded_env: Embedded, tmp_path: Path
) -> None:
    folder = tmp_path / "nul"
    folder.mkdir()
    pdfgen.make_pdf_with_nul_characters(folder / "scan.pdf")
    submission = _submit(embedded_env, folder)
    [outcome] = embedded.run_item_runs(embedded_env.context, submission.item_run_ids)
    assert outcome.state == ItemState.done
    with embedded_env.session_factory() as session:
        item = session.scalars(select(Item)).one()
        texts = session.scalars(select(StoredSegment.text)).all()
        assert item.doc_metadata is not None
        assert "\x00" not in item.doc_metadata["title"] and "\ufffd" in item.doc_metadata["title"]
        assert item.doc_metadata["unstorable_characters_replaced"] >= 2
        assert texts and all("\x00" not in text for text in texts)
    assert _chain_intact(embedded_env, submission.job_id)


# --- map-reduce -------------------------------------------------------------------------


def test_a_long_document_is_read_in_page_windows_and_the_answers_combined(tmp_path: Path) -> None:
    env = next(make_embedded(tmp_path, FakeModel(context_tokens=420)))
    pages = [f"Page {n} " + " ".join(f"word{n}x{i}" for i in range(120)) for n in range(1, 7)]
    submission = _submit(env, _one_pdf(tmp_path / "long", pages))
    [outcome] = embedded.run_item_runs(env.context, submission.item_run_ids)
    assert outcome.state == ItemState.done
    with env.session_factory() as session:
        result = session.scalars(select(Result)).one()
    assert result.citations == [f"page {n}" for n in range(1, 7)]
    assert len(result.partials) >= 2 and result.model_calls > len(result.partials)
    assert [label for partial in result.partials for label in partial["cites"]] == result.citations
    reduce_instructions = build_task("summarize", {}, 80).reduce_instructions
    reduce_calls = [call for call in env.model.calls if call["instructions"] == reduce_instructions]
    assert len(reduce_calls) == result.model_calls - len(result.partials) >= 1


def test_a_context_too_small_to_combine_the_answers_fails_the_item_with_a_clear_error(
    tmp_path: Path,
) -> None:
    # Pages fit one to a window, but two long partial answers never fit one reduce window.
    env = next(make_embedded(tmp_path, FakeModel(context_tokens=212, answer_padding_words=40)))
    pages = [f"Page {n} " + " ".join(f"w{n}x{i}" for i in range(30)) for n in range(1, 5)]
    submission = _submit(env, _one_pdf(tmp_path / "long", pages))
    [outcome] = embedded.run_item_runs(env.context, submission.item_run_ids)
    assert (outcome.state, outcome.error_code) == (ItemState.failed, "model_failed")
    assert "too small to combine" in (_item_run(env, outcome.item_run_id).error_message or "")


def test_a_context_too_small_for_the_instructions_is_a_model_error_not_a_bug(
    tmp_path: Path,
) -> None:
    env = next(make_embedded(tmp_path, FakeModel(context_tokens=175)))
    submission = _submit(env, _one_pdf(tmp_path / "one"))
    [outcome] = embedded.run_item_runs(env.context, submission.item_run_ids)
    assert (outcome.state, outcome.error_code) == (ItemState.failed, "model_failed")
    assert "raise n_ctx" in (_item_run(env, outcome.item_run_id).error_message or "")


def test_an_item_whose_writes_keep_failing_transiently_ends_retries_exhausted(
    tmp_path: Path,
) -> None:
    env = next(
        make_embedded(
            tmp_path, FakeModel(), max_attempts=2, database_retry_limit=1, retry_backoff_s=0.01
        )
    )
    submission = _submit(env, _one_pdf(tmp_path / "one"))
    refused = sa_exc.OperationalError("INSERT", {}, Exception("could not serialize access"))
    always = FakeModel(script={n: _raise(refused) for n in range(1, 20)})
    [outcome] = embedded.run_item_runs(env.with_model(always), submission.item_run_ids)
    assert (outcome.state, outcome.error_code) == (ItemState.failed, "retries_exhausted")
    # Two attempts, each with its one database retry: four model calls in all.
    assert len(always.calls) == 4 and _item_run(env, outcome.item_run_id).attempts == 2
    assert "database_unavailable" in (_item_run(env, outcome.item_run_id).error_message or "")


def test_pages_that_repeat_an_earlier_page_word_for_word_are_not_sent(tmp_path: Path) -> None:
    env = next(make_embedded(tmp_path, FakeModel()))
    disclaimer = "This message is confidential and may be privileged."
    pages = [pdfgen.LETTER_PAGE, disclaimer, "Second letter page.", f"  {disclaimer}\n", ""]
    submission = _submit(env, _one_pdf(tmp_path / "repeats", pages))
    [outcome] = embedded.run_item_runs(env.context, submission.item_run_ids)
    assert outcome.state == ItemState.done
    with env.session_factory() as session:
        result = session.scalars(select(Result)).one()
    assert result.inputs["duplicate_segments_skipped"] == ["page 4"]
    sent = " ".join(call["content"] for call in env.model.calls)
    assert sent.count("confidential and may be privileged") == 1
    assert "--- page 4 ---" not in sent and "--- page 5 ---" not in sent


# --- lanes: several items at once in one process -----------------------------


def test_with_parallel_sequences_items_run_at_once_each_lane_under_its_own_identity(
    tmp_path: Path,
) -> None:
    import threading

    lanes = 3
    # The first three calls wait for each other: they only all get through if
    # three items really are in the model at the same time.
    together = threading.Barrier(lanes, timeout=20)
    model = FakeModel(script=dict.fromkeys(range(1, lanes + 1), together.wait))
    env = next(make_embedded(tmp_path, model))
    config = env.settings.model_copy(
        update={"model": env.settings.model.model_copy(update={"parallel_sequences": lanes})}
    )
    folder = tmp_path / "letters"
    folder.mkdir()
    for n in range(5):
        (folder / f"letter-{n}.txt").write_text(f"Letter {n}: the shipment of {n} crates.\n")
    submission = _submit(env, folder)
    outcomes = embedded.run_item_runs(replace(env.context, config=config), submission.item_run_ids)
    assert [outcome.item_run_id for outcome in outcomes] == submission.item_run_ids
    assert {outcome.state for outcome in outcomes} == {ItemState.done}
    with env.session_factory() as session:
        actors = set(
            session.scalars(select(AuditEvent.actor).where(AuditEvent.action == "result.stored"))
        )
    assert len(actors) == lanes
    assert all(actor.startswith("test-worker@host:1/") for actor in actors)
    assert _chain_intact(env, submission.job_id)
