"""The --where language: every operator, precedence, null, units, current, and bad input."""

from __future__ import annotations

import dataclasses

import pytest

from jobs import item_filter
from jobs.item_filter import Context, FilterSyntaxError, ItemFacts

SCAN = ItemFacts(
    state="failed",
    error_code="pdf_encrypted",
    media_type="application/pdf",
    path="/matter/custodian-a/drafts/scan 1.pdf",
    custodian="Alice Ng",
    size_bytes=25_000_000,
    page_count=60,
    model_sha256=None,
    task_version=None,
)
PHOTO = ItemFacts(
    state="done",
    error_code=None,
    media_type="image/png",
    path="/matter/custodian-b/photo.png",
    custodian=None,
    size_bytes=2048,
    page_count=None,
    model_sha256="a" * 64,
    task_version="2",
)
CURRENT = Context(current_model_sha256="a" * 64)


def matching(expression: str) -> list[str]:
    parsed = item_filter.parse(expression)
    return [
        facts.path.rsplit("/", 1)[1] for facts in (SCAN, PHOTO) if parsed.matches(facts, CURRENT)
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("state = failed", ["scan 1.pdf"]),
        ("state != failed", ["photo.png"]),
        ("error_code = pdf_encrypted", ["scan 1.pdf"]),
        ("error_code = null", ["photo.png"]),
        ("error_code != null", ["scan 1.pdf"]),
        ("error_code ~ 'pdf_*'", ["scan 1.pdf"]),
        ("error_code !~ 'pdf_*'", ["photo.png"]),
        ('media_type ~ "image/*"', ["photo.png"]),
        ("media_type = application/pdf", ["scan 1.pdf"]),
        ("path ~ */drafts/*", ["scan 1.pdf"]),
        ("path ~ */custodian-?/photo.png", ["photo.png"]),
        ("path ~ *[0-9].pdf", ["scan 1.pdf"]),
        ("path ~ 2023[0-9]*", []),
        ('path = "/matter/custodian-a/drafts/scan 1.pdf"', ["scan 1.pdf"]),
        ("custodian = 'Alice Ng'", ["scan 1.pdf"]),
        ("custodian = null", ["photo.png"]),
        ("size_bytes > 20MB", ["scan 1.pdf"]),
        ("size_bytes <= 2KiB", ["photo.png"]),
        ("size_bytes < 2048", []),
        ("size_bytes >= 2048", ["scan 1.pdf", "photo.png"]),
        ("page_count > 50", ["scan 1.pdf"]),
        ("page_count = null", ["photo.png"]),
        ("model_sha256 != current", ["scan 1.pdf"]),
        ("model_sha256 = current", ["photo.png"]),
        ("task_version < 3", ["photo.png"]),
        ("task_version = 2", ["photo.png"]),
        ("task_version = null", ["scan 1.pdf"]),
        ("STATE = failed AND Page_Count > 10", ["scan 1.pdf"]),
    ],
)
def test_each_field_and_operator(expression: str, expected: list[str]) -> None:
    assert matching(expression) == expected


def test_and_binds_tighter_than_or_and_parentheses_change_that() -> None:
    assert matching("state = done or state = failed and page_count > 100") == ["photo.png"]
    assert matching("(state = done or state = failed) and page_count > 100") == []


def test_not_negates_what_follows_it() -> None:
    assert matching("not state = failed") == ["photo.png"]
    assert matching("not (state = failed or state = done)") == []
    assert matching("not not state = failed") == ["scan 1.pdf"]


def test_the_filter_says_whether_it_needs_the_current_model() -> None:
    assert item_filter.parse("model_sha256 != current").uses_current_model
    assert not item_filter.parse("state = failed").uses_current_model


def test_a_value_that_only_looks_like_a_keyword_is_an_ordinary_value_when_quoted() -> None:
    renamed = dataclasses.replace(PHOTO, custodian="null")
    assert item_filter.parse("custodian = 'null'").matches(renamed)
    assert not item_filter.parse("custodian = null").matches(renamed)


@pytest.mark.parametrize(
    ("expression", "position", "problem"),
    [
        ("", 1, "expected a comparison"),
        ("colour = red", 1, "expected a field (state, error_code"),
        ("state failed", 7, "expected an operator (= !=)"),
        ("state < failed", 7, "expected an operator state takes (= !=)"),
        ("state = finished", 9, "expected a state (pending, queued"),
        ("state = failed and", 19, "expected a field"),
        ("state = failed or or", 19, "expected a field"),
        ("(state = failed", 16, "expected ')'"),
        ("state = failed)", 15, "expected 'and', 'or' or the end"),
        ("size_bytes > big", 14, "expected a number"),
        ("size_bytes > 20XB", 14, "unknown unit 'XB'"),
        ("task_version < two", 16, "expected a version number"),
        ("path ~ 'unterminated", 8, "unexpected character"),
        ("state = failed; drop table items", 15, "unexpected character ';'"),
        ("page_count >", 13, "expected a value for page_count"),
        ("state = null", 9, "every item has a state"),
    ],
)
def test_a_bad_expression_names_the_position_and_what_was_expected(
    expression: str, position: int, problem: str
) -> None:
    with pytest.raises(FilterSyntaxError) as failure:
        item_filter.parse(expression)
    message = failure.value.message
    assert problem in message
    assert f"at position {position}\n" in message
    assert failure.value.code == "invalid_filter"


def test_discovery_fields_select_by_level_family_thread_and_inclusiveness() -> None:
    reply = dataclasses.replace(
        PHOTO, path="/m/inbox.mbox › message 2", level=1, family_id=7, thread_id="T1"
    )
    non_inclusive = dataclasses.replace(reply, inclusive=False)
    inclusive = dataclasses.replace(reply, inclusive=True)
    keep = item_filter.parse("inclusive != false")
    assert [keep.matches(f) for f in (non_inclusive, inclusive, SCAN)] == [False, True, True]
    assert item_filter.parse("inclusive = true").matches(inclusive)
    assert not item_filter.parse("inclusive = true").matches(SCAN)  # not an e-mail
    assert item_filter.parse("level >= 1 and family_id = 7 and thread_id ~ 'T*'").matches(reply)
    assert not item_filter.parse("level = 0").matches(reply)


def test_inclusive_takes_only_true_or_false() -> None:
    with pytest.raises(FilterSyntaxError, match="expected true or false"):
        item_filter.parse("inclusive = yes")
    with pytest.raises(FilterSyntaxError):
        item_filter.parse("inclusive ~ 't*'")
