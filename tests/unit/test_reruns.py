"""Re-runs, run diffs, the reconciliation report and estimates on the embedded default.

SQLite and the fake model: the selection rules, the new run's records, the
version bump, diffs and the report's arithmetic, in milliseconds. The same
commands through a real worker and model are in
``tests/integration/test_admin_reruns.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import AuditEvent, Item, ItemRun, ItemState, Job, Result, Run
from jobs import embedded, estimates, item_filter, reconciliation, reruns, run_diff, submit
from jobs.status import run_summaries
from tests import pdfgen
from tests.fake_model import FakeModel
from tests.unit.test_embedded_pipeline import Embedded, make_embedded
from worker import errors, recovery
from worker.pipeline import output_sha256, process_item_run
from worker.task_specs import build_task


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Embedded]:
    yield from make_embedded(tmp_path, FakeModel())


@pytest.fixture
def first_run(env: Embedded, tmp_path: Path) -> submit.Submission:
    folder = tmp_path / "matter"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "memo.pdf", pdfgen.MEMO_PAGES, title="Memo")
    (folder / "letter.txt").write_text("Dear Ms Ng, the crates left on Monday.\n")
    pdfgen.make_corrupt_pdf(folder / "corrupt.pdf")
    (folder / "letter-copy.txt").write_text("Dear Ms Ng, the crates left on Monday.\n")
    submission = submit.submit(
        env.session_factory,
        env.settings,
        paths=[folder],
        task=build_task("summarize", {}, env.settings.model.max_text_chars),
        name="matter",
        executor="in_process",
        options=submit.RunOptions(custodian="Alice Ng"),
    )
    embedded.run_item_runs(env.context, submission.item_run_ids)
    return submission


def _rerun(env: Embedded, job_id: int, **request: object) -> reruns.Rerun:
    made = reruns.record_rerun(
        env.session_factory,
        reruns.RerunRequest(job_id=job_id, **request),  # type: ignore[arg-type]
        actor="admin",
        executor="in_process",
    )
    embedded.run_item_runs(env.context, made.item_run_ids)
    return made


def _item_ids(env: Embedded, run_id: int) -> set[int]:
    with env.session_factory() as session:
        return set(session.scalars(select(ItemRun.item_id).where(ItemRun.run_id == run_id)))


def test_failed_only_makes_a_run_of_just_the_failed_items_and_keeps_the_first(
    env: Embedded, first_run: submit.Submission
) -> None:
    made = _rerun(env, first_run.job_id, failed_only=True)
    with env.session_factory() as session:
        failed = set(
            session.scalars(
                select(ItemRun.item_id).where(
                    ItemRun.run_id == first_run.run_id, ItemRun.state == ItemState.failed
                )
            )
        )
        run = session.get(Run, made.run_id)
        assert run is not None and run.number == 2 and run.parent_run_id == first_run.run_id
        assert run.selection == {
            "run": 1,
            "failed_only": True,
            "where": None,
            "task": None,
            "task_options": None,
            "model": None,
            "deterministic": False,
            "priority": "normal",
            "selected": 1,
            "considered": 3,
        }
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.run_id == made.run_id, AuditEvent.action == "run.created"
            )
        ).one()
        assert event.actor == "admin" and event.details["selected"] == 1
        assert session.scalar(select(Result.id).where(Result.run_id == first_run.run_id))
    assert _item_ids(env, made.run_id) == failed and len(failed) == 1


def test_where_is_evaluated_against_the_base_run(
    env: Embedded, first_run: submit.Submission
) -> None:
    made = _rerun(
        env, first_run.job_id, where=item_filter.parse("state = done and media_type ~ 'text/*'")
    )
    assert len(made.item_run_ids) == 1
    with env.session_factory() as session:
        [item] = session.scalars(
            select(Item)
            .join(ItemRun, ItemRun.item_id == Item.id)
            .where(ItemRun.run_id == made.run_id)
        )
        # The first path seen in walk order names the item; its copy is a source.
        assert item.path.endswith("letter-copy.txt") and item.custodian == "Alice Ng"


def test_a_rerun_that_selects_nothing_records_nothing(
    env: Embedded, first_run: submit.Submission
) -> None:
    with pytest.raises(errors.UsageError, match="selects no items"):
        reruns.record_rerun(
            env.session_factory,
            reruns.RerunRequest(first_run.job_id, where=item_filter.parse("page_count > 999")),
            actor="admin",
            executor="in_process",
        )
    with env.session_factory() as session:
        assert session.scalar(select(Run.number).order_by(Run.number.desc())) == 1


def test_a_changed_prompt_of_the_same_task_is_its_next_version(
    env: Embedded, first_run: submit.Submission
) -> None:
    max_chars = env.settings.model.max_text_chars
    asked = _rerun(
        env, first_run.job_id, task=build_task("prompt", {"prompt": "Who wrote it?"}, max_chars)
    )
    reworded = _rerun(
        env, first_run.job_id, task=build_task("prompt", {"prompt": "When?"}, max_chars)
    )
    same = _rerun(env, first_run.job_id, task=build_task("prompt", {"prompt": "When?"}, max_chars))
    back = _rerun(
        env, first_run.job_id, task=build_task("prompt", {"prompt": "Who wrote it?"}, max_chars)
    )
    third = _rerun(
        env, first_run.job_id, task=build_task("prompt", {"prompt": "Where?"}, max_chars)
    )
    with env.session_factory() as session:
        versions = {
            run.id: run.task_version
            for run in session.scalars(select(Run).where(Run.job_id == first_run.job_id))
        }
    assert versions[asked.run_id] == "1"  # a different task: its own version
    assert versions[reworded.run_id] == "2"
    assert versions[same.run_id] == "2"  # the same prompt again: the same version
    assert versions[back.run_id] == "1"  # an earlier prompt keeps its version
    assert versions[third.run_id] == "3"  # a new one: the job's highest plus one


def test_diff_reports_unchanged_changed_and_items_only_in_one_run(
    env: Embedded, first_run: submit.Submission
) -> None:
    again = _rerun(env, first_run.job_id, where=item_filter.parse("state = done"))
    with env.session_factory() as session:
        diffs = list(run_diff.diff_runs(session, first_run.run_id, again.run_id))
    statuses = sorted(d.status for d in diffs)
    # The fake model numbers its answers, so a second call answers differently.
    assert statuses == ["changed", "changed", "only_in_a"]
    changed = next(d for d in diffs if d.status == "changed")
    assert "output.summary" in changed.changes
    assert run_diff.summarise(diffs) == {
        "unchanged": 0,
        "changed": 2,
        "only_in_a": 1,
        "only_in_b": 0,
    }
    with env.session_factory() as session:
        same = list(run_diff.diff_runs(session, again.run_id, again.run_id))
    assert {d.status for d in same} == {"unchanged"}


def test_diff_refuses_runs_of_different_jobs(env: Embedded, first_run: submit.Submission) -> None:
    with env.session_factory() as session, pytest.raises(errors.NotFoundError):
        list(run_diff.diff_runs(session, first_run.run_id, 999))


def test_the_report_puts_every_submitted_path_in_one_category(
    env: Embedded, first_run: submit.Submission
) -> None:
    with env.session_factory() as session:
        report = reconciliation.build_report(session, first_run.job_id)
    categories = {Path(row.path).name: row.category for row in report.rows}
    assert categories == {
        "memo.pdf": "processed",
        "letter-copy.txt": "processed",
        "letter.txt": "duplicate",
        "corrupt.pdf": "failed",
    }
    assert report.balanced
    assert report.check_line().endswith("= 4: ok")
    assert report.error_codes() == {"corrupt_file": 1}
    # A re-run of the failed item only: the rest are "not in this run".
    made = _rerun(env, first_run.job_id, failed_only=True)
    with env.session_factory() as session:
        narrower = reconciliation.build_report(session, first_run.job_id, made.number)
    assert narrower.counts()["not_in_run"] == 2 and narrower.balanced


def test_a_report_whose_counts_do_not_add_up_says_so(
    env: Embedded, first_run: submit.Submission
) -> None:
    with env.session_factory.begin() as session:
        job = session.get(Job, first_run.job_id)
        assert job is not None
        job.file_count += 1  # a path recorded as submitted that no source row accounts for
    with env.session_factory() as session:
        report = reconciliation.build_report(session, first_run.job_id)
    assert not report.balanced
    assert report.check_line().endswith("MISMATCH")


def test_a_submit_records_an_estimate_from_the_model_s_history(
    env: Embedded, first_run: submit.Submission, tmp_path: Path
) -> None:
    with env.session_factory() as session:
        first = session.get(Run, first_run.run_id)
        assert first is not None and first.estimate is not None
        assert first.estimate["seconds"] is None  # nothing had run before it
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "note.txt").write_text("Another note.\n")
    later = submit.submit(
        env.session_factory,
        env.settings,
        paths=[folder],
        task=build_task("summarize", {}, env.settings.model.max_text_chars),
        name="more",
        executor="in_process",
    )
    with env.session_factory() as session:
        run = session.get(Run, later.run_id)
        assert run is not None and run.estimate is not None
        assert run.estimate["items"] == 1 and run.estimate["seconds"] is not None


def test_runs_lists_each_run_with_its_selection_and_tokens(
    env: Embedded, first_run: submit.Submission
) -> None:
    _rerun(env, first_run.job_id, failed_only=True, priority="high")
    with env.session_factory() as session:
        listed = run_summaries(session, first_run.job_id)
    assert [summary.number for summary in listed] == [1, 2]
    assert listed[0].counts == {"done": 2, "failed": 1}
    assert listed[0].prompt_tokens > 0 and listed[0].model_sha256s == ["f" * 64]
    assert listed[1].parent_number == 1 and listed[1].priority == "high"
    assert listed[1].selection and listed[1].selection["failed_only"]


def test_each_result_stores_the_hash_of_its_output(
    env: Embedded, first_run: submit.Submission
) -> None:
    with env.session_factory() as session:
        for result in session.scalars(select(Result)):
            assert result.output_sha256 == output_sha256(result.output)
    assert output_sha256({"b": 1, "a": "é"}) == output_sha256({"a": "é", "b": 1})


def test_a_paused_job_s_items_go_back_to_pending_and_are_not_swept(
    env: Embedded, tmp_path: Path
) -> None:
    folder = tmp_path / "held"
    folder.mkdir()
    (folder / "a.txt").write_text("A note.\n")
    made = submit.submit(
        env.session_factory,
        env.settings,
        paths=[folder],
        task=build_task("summarize", {}, env.settings.model.max_text_chars),
        name="held",
        executor="in_process",
    )
    assert recovery.set_job_paused(env.session_factory, made.job_id, "admin", True)
    assert not recovery.set_job_paused(env.session_factory, made.job_id, "admin", True)
    [item_run_id] = made.item_run_ids
    assert process_item_run(env.context, item_run_id).state is None
    with env.session_factory() as session:
        item_run = session.get(ItemRun, item_run_id)
        assert item_run is not None and item_run.state == ItemState.pending
    assert recovery.set_job_paused(env.session_factory, made.job_id, "admin", False)
    assert process_item_run(env.context, item_run_id).state == ItemState.done


def test_a_worker_serving_another_model_leaves_the_item_for_one_that_serves_it(
    env: Embedded, first_run: submit.Submission
) -> None:
    from dataclasses import replace

    from worker.config import ModelSettings

    made = reruns.record_rerun(
        env.session_factory,
        reruns.RerunRequest(
            first_run.job_id,
            failed_only=True,
            model=ModelSettings(path=Path("/models/other-12b.gguf")),
        ),
        actor="admin",
        executor="celery",
    )
    [item_run_id] = made.item_run_ids
    assert process_item_run(env.context, item_run_id).state is None
    other = replace(env.model.info, path="/srv/models/other-12b.gguf")
    serving_it = replace(env.context, model=replace(env.model, info=other))
    assert process_item_run(serving_it, item_run_id).state == ItemState.failed  # corrupt.pdf


def test_an_estimate_counts_and_prices_from_the_history_of_the_model(
    env: Embedded, first_run: submit.Submission, tmp_path: Path
) -> None:
    from worker.config import MediaSettings

    folder = tmp_path / "incoming"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "two.pdf", pdfgen.MEMO_PAGES[:2])
    import zipfile

    with zipfile.ZipFile(folder / "box.zip", "w") as archive:
        archive.writestr("a.txt", "one")
        archive.writestr("b.wav", b"RIFF")
    facts = estimates.inspect_paths(submit.walk_inputs([folder]), MediaSettings())
    with env.session_factory() as session:
        rates = estimates.measured_rates(session, env.model.info.name)
        unknown = estimates.measured_rates(session, "never-used.gguf")
    assert set(rates) == {"application/pdf", "text/plain"}
    priced = estimates.estimate(facts, rates)
    assert (priced.items, priced.archive_members, priced.pages) == (3, 2, 2)
    assert priced.seconds is not None
    assert priced.without_history == {"audio/x-wav": 1}
    assert any("not counted, no history yet: 1 audio/x-wav" in line for line in priced.describe())
    blind = estimates.estimate(facts, unknown)
    assert blind.seconds is None
    assert any("no history yet" in line for line in blind.describe())
    assert estimates.format_duration(3725) == "1 h 02 min"
    assert estimates.format_duration(250) == "4 min 10 s"
