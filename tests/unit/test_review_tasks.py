"""Review tasks (privilege, responsiveness, pii) and grounding: each quote checked on its page.

The quote checks are pure functions; the tasks are checked by their schemas;
and one document goes through the embedded pipeline with a model that quotes
one real and one invented passage, so the verdict is stored, shown in the
results rows and counted by the report. The real model answers these tasks
through a real worker in ``tests/integration/test_review.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select

from db.models import AuditEvent, Result, Run
from jobs import embedded, reconciliation, results, submit
from tests import pdfgen
from tests.fake_model import FakeModel
from tests.unit.test_embedded_pipeline import Embedded, make_embedded
from worker import errors
from worker.grounding import check_quotes, normalised, quotes_in
from worker.task_specs import MAX_CASE_CHARS, build_task

PAGES = {
    "page 1": "Dear Ms Okafor,\nWe advise that the\u00a0indemnity clause is unenforceable.",
    "page 2": "Our fee for this advice is \u20ac4,000 \u2014 payable in 30 days.",
}


# --- grounding ---------------------------------------------------------------------------------


def test_a_quote_on_its_cited_page_is_verified_whatever_its_case_and_spacing() -> None:
    verdict = check_quotes(
        {"citations": [{"page": "page 1", "quote": "we  ADVISE that the indemnity clause."}]},
        PAGES,
    )
    assert verdict is not None
    assert (verdict["quotes"], verdict["verified"], verdict["unverified"]) == (1, 1, 0)
    assert verdict["checks"][0]["found_on"] == "page 1"


def test_curly_quotes_and_dashes_match_their_plain_forms() -> None:
    assert normalised("\u201cfee\u201d \u2013 payable") == normalised('"fee" - payable')
    verdict = check_quotes({"page": "2", "quote": "\u20ac4,000 - payable in 30 days"}, PAGES)
    assert verdict is not None and verdict["verified"] == 1  # a bare "2" means page 2


def test_a_quote_from_another_page_names_the_page_it_is_on() -> None:
    verdict = check_quotes({"page": "page 2", "quote": "the indemnity clause"}, PAGES)
    assert verdict is not None
    (check,) = verdict["checks"]
    assert (check["verified"], check["reason"], check["found_on"]) == (
        False,
        "on another page",
        "page 1",
    )


def test_an_invented_quote_and_a_page_that_does_not_exist_are_flagged() -> None:
    verdict = check_quotes(
        {
            "findings": [
                {"page": "page 1", "quote": "the clause is fully enforceable"},
                {"page": "page 9", "quote": "settle for one million"},
            ]
        },
        PAGES,
    )
    assert verdict is not None
    assert [check["reason"] for check in verdict["checks"]] == [
        "not in the document",
        "no such page, and not in the document",
    ]
    assert verdict["unverified"] == 2


def test_an_answer_without_quotes_has_no_verdict() -> None:
    assert check_quotes({"summary": "a letter", "key_points": ["advice"]}, PAGES) is None
    assert list(quotes_in({"a": [{"b": {"page": "page 1", "quote": "x"}}]})) == [("page 1", "x")]


# --- the tasks ---------------------------------------------------------------------------------


def test_the_privilege_answer_carries_basis_parties_log_line_and_cited_quotes() -> None:
    task = build_task("privilege", {}, 300)
    answer = {
        "privileged": True,
        "basis": "attorney_client",
        "author": "Hartley & Moss LLP",
        "recipients": ["Ms Okafor"],
        "date": "4 March 2024",
        "log_description": "Letter from outside counsel giving legal advice on a contract term",
        "citations": [{"page": "page 1", "quote": "We advise that"}],
    }
    task.validate(answer)
    with pytest.raises(errors.ModelOutputInvalidError):
        task.validate(answer | {"basis": "because"})
    assert "without revealing the advice" in task.instructions


def test_responsiveness_needs_a_case_and_puts_it_in_the_prompt() -> None:
    with pytest.raises(errors.ConfigurationError, match="--case"):
        build_task("responsiveness", {}, 300)
    with pytest.raises(errors.ConfigurationError, match="at most"):
        build_task("responsiveness", {"case": "x" * (MAX_CASE_CHARS + 1)}, 300)
    first = build_task("responsiveness", {"case": "RFP 1: the supply contract."}, 300)
    second = build_task("responsiveness", {"case": "RFP 1: the lease."}, 300)
    assert "RFP 1: the supply contract." in first.instructions
    assert first.prompt_hash != second.prompt_hash
    first.validate({"responsive": "partly", "request": "RFP 1", "reason": "r", "citations": []})
    jsonschema.Draft202012Validator.check_schema(first.schema)


def test_pii_findings_name_a_category_a_page_and_the_words() -> None:
    task = build_task("pii", {}, 300)
    task.validate({"findings": [{"category": "phone_number", "page": "page 2", "quote": "0161"}]})
    task.validate({"findings": []})
    with pytest.raises(errors.ModelOutputInvalidError):
        task.validate({"findings": [{"category": "shoe_size", "page": "page 2", "quote": "9"}]})


# --- through the pipeline ----------------------------------------------------------------------


def _one_real_one_invented_quote(output: dict[str, Any], content: str) -> dict[str, Any]:
    """Cite the letter's first six words, and words it never says."""
    output["citations"] = [
        {"page": "page 1", "quote": " ".join(pdfgen.LETTER_PAGE.split()[:6])},
        {"page": "page 1", "quote": "we admit liability in full"},
    ]
    return output


@pytest.fixture
def quoting_env(tmp_path: Path) -> Iterator[Embedded]:
    yield from make_embedded(tmp_path, FakeModel(rewrite=_one_real_one_invented_quote))


def test_a_review_result_stores_its_quote_checks_and_the_report_counts_them(
    quoting_env: Embedded, tmp_path: Path
) -> None:
    folder = tmp_path / "letters"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "letter.pdf", [pdfgen.LETTER_PAGE])
    task = build_task("privilege", {}, quoting_env.settings.model.max_text_chars)
    submission = submit.submit(
        quoting_env.session_factory,
        quoting_env.settings,
        paths=[folder],
        task=task,
        name="review",
        executor="in_process",
    )
    embedded.run_item_runs(quoting_env.context, submission.item_run_ids)
    with quoting_env.session_factory() as session:
        result = session.scalars(select(Result)).one()
        rows = list(results.result_rows(session, session.get(Run, submission.run_id)))
        report = reconciliation.build_report(session, submission.job_id)
        stored = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "result.stored")
        ).one()
    task.validate(result.output)  # the answer itself is untouched
    assert result.grounding is not None
    assert [check["verified"] for check in result.grounding["checks"]] == [True, False]
    assert result.grounding["checks"][1]["reason"] == "not in the document"
    (row,) = rows
    assert (row["quotes"], row["quotes_unverified"]) == (2, 1)
    assert row["grounding"] == result.grounding
    assert (report.quotes, report.quotes_unverified) == (2, 1)
    assert report.quotes_line() == "quotes: 2 checked against their cited pages, 1 unverified"
    assert (stored.details["quotes"], stored.details["quotes_unverified"]) == (2, 1)
