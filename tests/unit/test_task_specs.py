"""Analysis tasks: built from options, hashed for provenance, validating answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from worker import errors
from worker.task_specs import TASK_BUILDERS, TaskSpec, build_task, task_for_run

MAX_TEXT_CHARS = 300

INVOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string", "maxLength": 40},
        "total": {"type": "number"},
    },
    "required": ["invoice_number", "total"],
    "additionalProperties": False,
}

OPTIONS_BY_TASK: dict[str, dict[str, Any]] = {
    "summarize": {},
    "classify": {"labels": ["contract", "invoice", "letter"]},
    "extract": {"schema": INVOICE_SCHEMA},
    "prompt": {"prompt": "Who signed the document?"},
    "privilege": {},
    "responsiveness": {"case": "Request 1: the lease and its rent."},
    "pii": {},
}

VALID_OUTPUT_BY_TASK: dict[str, dict[str, Any]] = {
    "summarize": {"summary": "A lease between A and B.", "key_points": ["Rent is 900 EUR."]},
    "classify": {"label": "invoice", "reason": "Page 1 is headed INVOICE."},
    "extract": {"invoice_number": "INV-7", "total": 12.5},
    "prompt": {"answer": "Jane Doe signed on page 4."},
    "privilege": {
        "privileged": False,
        "basis": "none",
        "author": "A",
        "recipients": ["B"],
        "date": "1 May 2024",
        "log_description": "Lease terms",
        "citations": [{"page": "page 1", "quote": "Rent is 900 EUR"}],
    },
    "responsiveness": {
        "responsive": "yes",
        "request": "Request 1",
        "reason": "It is the lease.",
        "citations": [],
    },
    "pii": {"findings": [{"category": "person_name", "page": "page 4", "quote": "Jane Doe"}]},
}


def build(name: str, max_text_chars: int = MAX_TEXT_CHARS, **option_overrides: Any) -> TaskSpec:
    return build_task(name, {**OPTIONS_BY_TASK[name], **option_overrides}, max_text_chars)


def string_schemas(schema: Any) -> Iterator[dict[str, Any]]:
    """Every sub-schema that describes a string, however deeply nested."""
    if isinstance(schema, dict):
        if schema.get("type") == "string":
            yield schema
        for value in schema.values():
            yield from string_schemas(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from string_schemas(value)


def test_the_built_in_tasks_are_the_ones_the_options_cover() -> None:
    assert set(TASK_BUILDERS) == set(OPTIONS_BY_TASK)


@pytest.mark.parametrize("name", sorted(OPTIONS_BY_TASK))
def test_each_built_in_task_builds(name: str) -> None:
    spec = build(name)

    assert spec.name == name
    assert spec.version
    assert spec.instructions and spec.reduce_instructions
    assert spec.schema["type"] == "object"


@pytest.mark.parametrize("name", sorted(OPTIONS_BY_TASK))
def test_the_prompt_hash_is_stable(name: str) -> None:
    assert build(name).prompt_hash == build(name).prompt_hash
    assert len(build(name).prompt_hash) == 64


def test_different_tasks_have_different_prompt_hashes() -> None:
    hashes = {build(name).prompt_hash for name in OPTIONS_BY_TASK}

    assert len(hashes) == len(OPTIONS_BY_TASK)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("classify", {"labels": ["contract", "invoice"]}),
        ("classify", {"labels": ["invoice", "contract", "letter"]}),
        ("extract", {"schema": {**INVOICE_SCHEMA, "required": ["total"]}}),
        ("prompt", {"prompt": "Who received the document?"}),
    ],
)
def test_the_prompt_hash_changes_with_the_options(name: str, overrides: dict[str, Any]) -> None:
    assert build(name, **overrides).prompt_hash != build(name).prompt_hash


@pytest.mark.parametrize("name", ["summarize", "classify", "prompt"])
def test_the_prompt_hash_changes_with_max_text_chars(name: str) -> None:
    assert build(name, max_text_chars=MAX_TEXT_CHARS + 1).prompt_hash != build(name).prompt_hash


def test_the_prompt_hash_covers_instructions_and_schema() -> None:
    spec = build("summarize")

    assert (
        dataclasses.replace(spec, instructions=spec.instructions + " Be brief.").prompt_hash
        != spec.prompt_hash
    )
    assert dataclasses.replace(spec, reduce_instructions="Merge.").prompt_hash != spec.prompt_hash
    assert (
        dataclasses.replace(spec, schema={**spec.schema, "maxProperties": 2}).prompt_hash
        != spec.prompt_hash
    )
    assert dataclasses.replace(spec, version="2").prompt_hash != spec.prompt_hash


@pytest.mark.parametrize("name", sorted(OPTIONS_BY_TASK))
def test_build_task_records_max_text_chars_in_the_options(name: str) -> None:
    assert build(name).options["max_text_chars"] == MAX_TEXT_CHARS


@pytest.mark.parametrize("name", sorted(OPTIONS_BY_TASK))
def test_a_run_rebuilds_the_identical_task_from_its_stored_options(name: str) -> None:
    spec = build(name)

    rebuilt = task_for_run(name, spec.options)

    assert rebuilt == spec
    assert rebuilt.prompt_hash == spec.prompt_hash


def test_a_run_without_max_text_chars_cannot_be_rebuilt() -> None:
    with pytest.raises(errors.ConfigurationError, match="max_text_chars"):
        task_for_run("summarize", {})


def test_classify_answers_with_one_of_the_labels() -> None:
    spec = build("classify")

    assert spec.schema["properties"]["label"]["enum"] == ["contract", "invoice", "letter"]
    assert spec.options["labels"] == ["contract", "invoice", "letter"]
    assert "contract, invoice, letter" in spec.instructions


@pytest.mark.parametrize(
    "labels",
    [None, [], ["only"], ["same", "same"], ["a", "b", "a"]],
    ids=["missing", "empty", "one", "duplicate pair", "duplicate among three"],
)
def test_classify_needs_at_least_two_distinct_labels(labels: list[str] | None) -> None:
    with pytest.raises(errors.ConfigurationError, match="two distinct"):
        build_task("classify", {"labels": labels}, MAX_TEXT_CHARS)


def test_extract_uses_the_given_schema() -> None:
    spec = build("extract")

    assert spec.schema == INVOICE_SCHEMA
    assert '"invoice_number"' in spec.instructions


@pytest.mark.parametrize(
    "schema",
    [None, "not a schema", ["type", "object"], {"type": "array", "items": {"type": "string"}}, {}],
    ids=["missing", "string", "list", "array schema", "no type"],
)
def test_extract_needs_a_schema_whose_top_level_is_an_object(schema: Any) -> None:
    with pytest.raises(errors.ConfigurationError, match="top level is an object"):
        build_task("extract", {"schema": schema}, MAX_TEXT_CHARS)


def test_extract_rejects_an_invalid_json_schema() -> None:
    invalid = {"type": "object", "properties": {"total": {"type": "money"}}}

    with pytest.raises(errors.ConfigurationError, match="not a valid JSON schema"):
        build_task("extract", {"schema": invalid}, MAX_TEXT_CHARS)


@pytest.mark.parametrize("prompt", [None, "", "   \n"], ids=["missing", "empty", "blank"])
def test_the_prompt_task_needs_text(prompt: str | None) -> None:
    with pytest.raises(errors.ConfigurationError, match="--prompt"):
        build_task("prompt", {"prompt": prompt}, MAX_TEXT_CHARS)


def test_the_prompt_task_asks_the_stripped_question() -> None:
    spec = build("prompt", prompt="  Who signed?  ")

    assert spec.options["prompt"] == "Who signed?"
    assert spec.instructions.endswith(" Who signed?")


def test_an_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(errors.ConfigurationError) as raised:
        build_task("translate", {}, MAX_TEXT_CHARS)

    assert "'translate'" in raised.value.message
    assert "classify, extract, pii, privilege, prompt, responsiveness, summarize" in (
        raised.value.message
    )


@pytest.mark.parametrize("name", sorted(OPTIONS_BY_TASK))
def test_a_schema_valid_answer_is_accepted(name: str) -> None:
    build(name).validate(VALID_OUTPUT_BY_TASK[name])


@pytest.mark.parametrize(
    ("name", "output"),
    [
        ("summarize", {"summary": "x" * (MAX_TEXT_CHARS + 1), "key_points": ["a"]}),
        ("summarize", {"summary": "ok", "key_points": []}),
        ("summarize", {"summary": "ok", "key_points": ["a", "b", "c", "d"]}),
        ("summarize", {"summary": "", "key_points": ["a"]}),
        ("summarize", {"summary": "ok"}),
        ("summarize", {"summary": "ok", "key_points": ["a"], "extra": 1}),
        ("classify", {"label": "memo", "reason": "r"}),
        ("classify", {"label": "invoice", "reason": "r" * (MAX_TEXT_CHARS + 1)}),
        ("extract", {"invoice_number": "INV-7", "total": "12.5"}),
        ("prompt", {"answer": 42}),
    ],
    ids=[
        "summary too long",
        "no key points",
        "too many key points",
        "empty summary",
        "missing field",
        "extra field",
        "label not offered",
        "reason too long",
        "wrong type",
        "answer not text",
    ],
)
def test_an_answer_outside_the_schema_is_refused(name: str, output: dict[str, Any]) -> None:
    spec = build(name)

    with pytest.raises(errors.ModelOutputInvalidError, match=f"the {name} schema") as raised:
        spec.validate(output)

    assert raised.value.code == "model_output_invalid"
    assert not raised.value.retryable


@pytest.mark.parametrize("name", ["summarize", "classify", "prompt"])
def test_every_free_text_field_of_a_built_in_task_is_bounded(name: str) -> None:
    strings = list(string_schemas(build(name).schema))

    assert strings, "the schema has no text field"
    for string_schema in strings:
        if "enum" in string_schema:
            continue
        assert 0 < string_schema["maxLength"] <= MAX_TEXT_CHARS


def test_every_free_text_field_of_an_extract_schema_is_bounded() -> None:
    schema = {
        "type": "object",
        "properties": {
            "parties": {"type": "array", "items": {"type": "string"}},
            "governing_law": {"type": "string"},
        },
        "required": ["parties", "governing_law"],
    }

    spec = build_task("extract", {"schema": schema}, MAX_TEXT_CHARS)

    for string_schema in string_schemas(spec.schema):
        assert 0 < string_schema.get("maxLength", 0) <= MAX_TEXT_CHARS
