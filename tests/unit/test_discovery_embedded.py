"""A discovery set through the embedded pipeline: families, custodians, dedup modes, threads, rows.

SQLite, in process, the fake model: the bookkeeping of families and
duplicates is what is under test here. The same matter goes through the
real worker, PostgreSQL and the model in ``tests/integration/test_discovery.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import AuditEvent, EmailMessage, Item, ItemSource, Run
from jobs import embedded, results, submit
from tests.fake_model import FakeModel
from tests.mattergen import build_matter
from tests.unit.test_embedded_pipeline import Embedded, make_embedded
from worker.task_specs import build_task


@pytest.fixture
def matter_env(tmp_path: Path) -> Iterator[Embedded]:
    yield from make_embedded(tmp_path, FakeModel())


def _run(env: Embedded, matter: Path, dedup: str) -> submit.Submission:
    task = build_task("summarize", {}, env.settings.model.max_text_chars)
    submission = submit.submit(
        env.session_factory,
        env.settings,
        paths=[matter],
        task=task,
        name="matter",
        executor="in_process",
        options=submit.RunOptions(custodian_folders=True, dedup=dedup),
    )
    embedded.run_item_runs(env.context, submission.item_run_ids)
    return submission


def _rows(env: Embedded, run_id: int) -> list[dict]:
    with env.session_factory() as session:
        run = session.get(Run, run_id)
        return list(results.result_rows(session, run))


def test_a_matter_becomes_families_with_custodians_duplicates_and_threads(
    matter_env: Embedded, tmp_path: Path
) -> None:
    matter = build_matter(tmp_path / "matter")
    submission = _run(matter_env, matter, "global")
    rows = _rows(matter_env, submission.run_id)
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    assert all(row["state"] == "done" for row in rows), [
        (row["path"], row["state"], row["error_message"]) for row in rows
    ]

    mailbox = by_name["inbox.mbox"]
    assert mailbox["container_counts"] == {"expected": 5, "extracted": 5, "failed": 0}
    assert mailbox["result"] is None  # a container: its messages are the documents
    in_mailbox = [
        row
        for row in rows
        if row["path"].startswith(mailbox["path"] + " › ") and row["path"].count(" › ") == 1
    ]
    assert len(in_mailbox) == 5  # every message accounted for
    messages = [row for row in in_mailbox if not row["duplicate"]]
    assert {row["parent_item_id"] for row in messages} == {mailbox["item_id"]}
    assert [row["ordinal"] for row in messages] == [1, 2, 3, 4]
    # The fifth is Erin's loose lunch.eml, found again in Alice's mailbox.
    (again,) = [row for row in in_mailbox if row["duplicate"]]
    assert again["path"].endswith("message 5: Team lunch")
    assert again["duplicate_of"].endswith("erin/lunch.eml")
    # Each message is the top of its own family; attachments stay in the family.
    assert all(row["family_id"] == row["item_id"] and row["level"] == 1 for row in messages)
    original = next(row for row in messages if row["ordinal"] == 1)
    attachments = [row for row in rows if row["parent_item_id"] == original["item_id"]]
    assert sorted(row["path"].rsplit(" › ", 1)[-1] for row in attachments) == [
        "attachment 1: draft.docx",
        "attachment 2: notes.zip",
    ]
    assert {row["family_id"] for row in attachments} == {original["item_id"]}
    draft, notes_zip = sorted(attachments, key=lambda row: row["path"])
    assert draft["result"] is not None
    # The attached ZIP is a container in the family: its file is the document reviewed.
    assert notes_zip["result"] is None and notes_zip["container_counts"] == {
        "expected": 1,
        "extracted": 1,
        "failed": 0,
    }
    (zipped,) = [row for row in rows if row["parent_item_id"] == notes_zip["item_id"]]
    assert zipped["path"].endswith("attachment 2: notes.zip › notes/first.txt")
    assert zipped["family_id"] == original["item_id"] and zipped["level"] == 3
    assert zipped["result"] is not None
    assert original["path"].endswith("inbox.mbox › message 1: Q3 forecast")

    # The lunch message: in Alice's mailbox and loose in Erin's folder, one document.
    lunch = [row for row in rows if "lunch" in row["path"].lower()]
    assert len({row["item_id"] for row in lunch}) == 1
    assert sorted(row["duplicate"] for row in lunch) == [False, True]
    assert all(row["all_custodians"] == ["alice", "erin"] for row in lunch)
    assert {row["custodian"] for row in lunch} == {"alice", "erin"}

    # Threads: the four Q3 messages share one, in date order; only the last two are inclusive.
    q3 = sorted(
        (row for row in messages if row["ordinal"] <= 4), key=lambda row: row["thread_position"]
    )
    assert len({row["thread_id"] for row in q3}) == 1
    assert [row["ordinal"] for row in q3] == [1, 2, 3, 4]
    # The original carries attachments no reply has, so it stays inclusive.
    assert [row["inclusive"] for row in q3] == [True, False, False, True]
    assert q3[1]["included_in_item_id"] == q3[3]["item_id"]

    # The embedded file of the Word document is a child of its family.
    plan = by_name["plan.docx"]
    (embedded_row,) = [row for row in rows if row["parent_item_id"] == plan["item_id"]]
    assert embedded_row["family_id"] == plan["family_id"] and embedded_row["level"] == 1

    # Bob's Outlook message: a family of the MSG, its attached file and its attached message,
    # which threads with it (by subject) and is included in it (its text is quoted).
    settlement = by_name["settlement.msg"]
    assert settlement["family_id"] == settlement["item_id"] and settlement["custodian"] == "bob"
    assert settlement["message_id"] == "terms-2@example.test"
    children = sorted(
        (row for row in rows if row["parent_item_id"] == settlement["item_id"]),
        key=lambda row: row["ordinal"],
    )
    assert [row["path"].rsplit(" › ", 1)[-1] for row in children] == [
        "attachment 1: signed.txt",
        "attachment 2: Settlement terms.msg",
    ]
    assert {row["family_id"] for row in children} == {settlement["item_id"]}
    embedded_message = children[1]
    assert embedded_message["message_id"] == "terms-1@example.test"
    assert embedded_message["thread_id"] == settlement["thread_id"]
    assert (settlement["inclusive"], embedded_message["inclusive"]) == (True, False)
    assert embedded_message["included_in_item_id"] == settlement["item_id"]

    _assert_families_whole(matter_env, submission.job_id, rows)


def _assert_families_whole(env: Embedded, job_id: int, rows: list[dict]) -> None:
    """Every child's parent is in the job, and each family's rows are contiguous."""
    with env.session_factory() as session:
        items = {
            item.id: item for item in session.scalars(select(Item).where(Item.job_id == job_id))
        }
        for item in items.values():
            if item.parent_id is not None:
                assert item.parent_id in items
                assert item.level == items[item.parent_id].level + 1
        found = session.scalars(select(AuditEvent).where(AuditEvent.action == "item.found")).all()
        assert {event.item_id for event in found} >= {i for i, it in items.items() if it.parent_id}
    order = [row["family_id"] for row in rows if not row["duplicate"]]
    seen: list[int] = []
    for family in order:
        if seen and seen[-1] == family:
            continue
        assert family not in seen, f"family {family} is split in the results"
        seen.append(family)


@pytest.mark.parametrize(
    ("mode", "lunch_items"),
    [("global", 1), ("custodian", 2), ("none", 2)],
)
def test_dedup_modes_count_documents_per_mode(
    matter_env: Embedded, tmp_path: Path, mode: str, lunch_items: int
) -> None:
    matter = build_matter(tmp_path / "matter")
    # A second copy of the memo for Erin: byte-identical, so it de-duplicates by SHA-256.
    (matter / "erin" / "plan-copy.docx").write_bytes((matter / "erin" / "plan.docx").read_bytes())
    submission = _run(matter_env, matter, mode)
    rows = _rows(matter_env, submission.run_id)
    lunch = {row["item_id"] for row in rows if "lunch" in row["path"].lower()}
    plans = {
        row["item_id"] for row in rows if row["path"].endswith(("plan.docx", "plan-copy.docx"))
    }
    assert len(lunch) == lunch_items
    # The two plans are one custodian's: one document unless dedup is off.
    assert len(plans) == (2 if mode == "none" else 1)
    # Attachments are never de-duplicated away from their families.
    with matter_env.session_factory() as session:
        parents = Counter(
            session.scalars(select(Item.parent_id).where(Item.parent_id.is_not(None)))
        )
        assert sum(parents.values()) >= 5 + 2 + 1  # messages, the original's two, the embedded one
        sources = session.scalars(select(ItemSource)).all()
        assert len(sources) == len(rows)


def test_a_thread_is_recorded_once_the_run_completes(matter_env: Embedded, tmp_path: Path) -> None:
    matter = build_matter(tmp_path / "matter")
    submission = _run(matter_env, matter, "global")
    with matter_env.session_factory() as session:
        messages = session.scalars(select(EmailMessage)).all()
        # Four Q3 messages, the lunch (its mailbox copy is a duplicate path), Bob's MSG
        # and the message embedded in it.
        assert len(messages) == 7
        assert all(message.thread_id for message in messages)
        completed = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "run.completed")
        ).one()
        assert completed.details["email_threads"] == {"messages": 7, "threads": 3, "inclusive": 4}
        assert completed.run_id == submission.run_id


def test_the_report_accounts_for_every_submitted_and_every_found_path(
    matter_env: Embedded, tmp_path: Path
) -> None:
    from jobs import reconciliation

    matter = build_matter(tmp_path / "matter")
    submission = _run(matter_env, matter, "global")
    with matter_env.session_factory() as session:
        report = reconciliation.build_report(session, submission.job_id)
        found_sources = session.scalars(
            select(ItemSource).where(ItemSource.container_item_id.is_not(None))
        ).all()
    assert report.balanced
    assert len(report.rows) == 4  # the mailbox, lunch.eml, plan.docx, settlement.msg
    assert report.check_line().endswith("= 4: ok")
    assert {row.path for row in report.found} == {source.path for source in found_sources}
    # The lunch message found again in Alice's mailbox is a duplicate of Erin's loose copy.
    assert report.counts(report.found)["duplicate"] == 1
    assert report.counts(report.found)["processed"] == len(found_sources) - 1
    assert report.found_line() == (
        f"check: {len(found_sources)} found paths = {len(found_sources) - 1} processed "
        "+ 1 duplicate: ok"
    )
    assert all(row.found_in_item_id is not None for row in report.found)
    assert tuple(report.found[0].as_row()) == reconciliation.COLUMNS  # the CSV header


def test_a_review_rerun_reads_each_unique_text_once(matter_env: Embedded, tmp_path: Path) -> None:
    from jobs import item_filter, reruns

    matter = build_matter(tmp_path / "matter")
    submission = _run(matter_env, matter, "global")
    with matter_env.session_factory() as session:
        selection = reruns.select_items(
            session,
            reruns.RerunRequest(submission.job_id, where=item_filter.parse("inclusive != false")),
        )
        left_out = set(
            session.scalars(
                select(Item.path).where(
                    Item.job_id == submission.job_id, Item.id.not_in(selection.item_ids)
                )
            )
        )
    # The two Q3 replies the forward quotes whole, and the offer Bob's MSG quotes.
    assert sorted(path.rsplit(" › ", 1)[-1] for path in left_out) == [
        "attachment 2: Settlement terms.msg",
        "message 2: Re: Q3 forecast",
        "message 3: RE: Q3 forecast",
    ]
