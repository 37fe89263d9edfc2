"""Analysis tasks: a named, versioned prompt plus the JSON schema of its answer.

The schema does double duty: it becomes the grammar that constrains the model's
output, and it validates the answer before it is stored. Free-text fields carry
a ``maxLength`` so the grammar closes the JSON within the token budget even when
a small model rambles.

Bump a task's ``version`` whenever its instructions or schema change: results
record the version and the prompt hash, so runs stay comparable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from worker import errors


@dataclass(frozen=True)
class TaskSpec:
    """A task bound to its options, ready to prompt with."""

    name: str
    version: str
    instructions: str  # what the model is asked, before the document
    reduce_instructions: str  # how partial answers over page windows are combined
    schema: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_hash(self) -> str:
        """SHA-256 of everything that shapes the model's answer."""
        material = json.dumps(
            {
                "name": self.name,
                "version": self.version,
                "instructions": self.instructions,
                "reduce_instructions": self.reduce_instructions,
                "schema": self.schema,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def validate(self, output: dict[str, Any]) -> None:
        """Raise :class:`worker.errors.ModelOutputInvalidError` unless ``output`` fits."""
        try:
            jsonschema.validate(output, self.schema)
        except jsonschema.ValidationError as exc:
            raise errors.ModelOutputInvalidError(
                f"the model's answer does not match the {self.name} schema: {exc.message}"
            ) from exc


def _text(max_chars: int, description: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_chars, "description": description}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_COMMON = (
    "You review documents for a legal or clinical team. "
    "Rely only on the document text you are given; do not invent facts. "
    "Each page of the document is introduced by a line such as '--- page 3 ---'. "
    "Answer with JSON only."
)


def _summarize(options: dict[str, Any], max_text_chars: int) -> TaskSpec:
    return TaskSpec(
        name="summarize",
        version="1",
        instructions=f"{_COMMON} Summarise the document: what it is, who is involved, "
        "the key facts, dates and amounts.",
        reduce_instructions=f"{_COMMON} You are given summaries of consecutive parts of one "
        "document, each headed by the pages it covers. Write one summary of the whole document.",
        schema=_object(
            {
                "summary": _text(max_text_chars, "a summary of the document"),
                "key_points": {
                    "type": "array",
                    "items": _text(max(40, max_text_chars // 3), "one key fact"),
                    "minItems": 1,
                    "maxItems": 3,
                },
            }
        ),
        options=options,
    )


def _classify(options: dict[str, Any], max_text_chars: int) -> TaskSpec:
    labels = options.get("labels") or []
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise errors.ConfigurationError("classify needs at least two distinct --labels")
    label_list = ", ".join(labels)
    return TaskSpec(
        name="classify",
        version="1",
        instructions=f"{_COMMON} Classify the document as exactly one of: {label_list}. "
        "Give a short reason citing the page.",
        reduce_instructions=f"{_COMMON} Parts of one document were classified separately as "
        f"one of: {label_list}. Decide the label for the whole document and give a reason.",
        schema=_object(
            {
                "label": {"type": "string", "enum": list(labels)},
                "reason": _text(max_text_chars, "why this label fits, citing pages"),
            }
        ),
        options={"labels": list(labels)},
    )


def _extract(options: dict[str, Any], max_text_chars: int) -> TaskSpec:
    schema = options.get("schema")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise errors.ConfigurationError(
            "extract needs --schema: a JSON schema file whose top level is an object"
        )
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise errors.ConfigurationError(
            f"the --schema is not a valid JSON schema: {exc.message}"
        ) from exc
    schema = _bound_free_text(schema, max_text_chars)
    return TaskSpec(
        name="extract",
        version="1",
        instructions=f"{_COMMON} Extract the fields described by the JSON schema from the "
        f"document. Schema: {json.dumps(schema, sort_keys=True)}",
        reduce_instructions=f"{_COMMON} Fields were extracted from consecutive parts of one "
        "document; merge them into one answer for the whole document.",
        schema=schema,
        options={"schema": schema},
    )


def _prompt(options: dict[str, Any], max_text_chars: int) -> TaskSpec:
    question = (options.get("prompt") or "").strip()
    if not question:
        raise errors.ConfigurationError("the prompt task needs --prompt TEXT")
    return TaskSpec(
        name="prompt",
        version="1",
        instructions=f"{_COMMON} {question}",
        reduce_instructions=f"{_COMMON} Answers were given for consecutive parts of one "
        f"document to this request: {question} Combine them into one answer.",
        schema=_object({"answer": _text(max_text_chars, "the answer")}),
        options={"prompt": question},
    )


# --- review tasks for litigation teams ------------------------------------------------------

# The longest case description --case may give: it is part of every prompt.
MAX_CASE_CHARS = 6000
PRIVILEGE_BASES = ("attorney_client", "work_product", "common_interest", "none")
PII_CATEGORIES = (
    "person_name",
    "postal_address",
    "phone_number",
    "email_address",
    "date_of_birth",
    "government_id",
    "financial_account",
    "health",
    "other",
)
_CITE = (
    "Cite pages: each citation gives the page label as the document introduces it "
    "(for example 'page 3' or 'message') and words copied exactly from that page."
)


def _citations(max_text_chars: int, max_items: int = 2) -> dict[str, Any]:
    """Cited pages with exact quotes: what grounding checks against the page's own text.

    Every length follows ``max_text_chars`` (as the other tasks' do), so the
    whole answer fits ``max_output_tokens`` even when a small model writes
    each string to its limit.
    """
    return {
        "type": "array",
        "items": _object(
            {
                "page": {"type": "string", "minLength": 1, "maxLength": 20},
                "quote": _text(max(30, max_text_chars // 2), "words copied exactly from that page"),
            }
        ),
        "minItems": 0,
        "maxItems": max_items,
    }


def _privilege(options: dict[str, Any], max_text_chars: int) -> TaskSpec:
    bases = ", ".join(PRIVILEGE_BASES)
    return TaskSpec(
        name="privilege",
        version="1",
        instructions=f"{_COMMON} Decide whether the document is protected by legal privilege. "
        "attorney_client: a confidential communication giving or asking for a lawyer's legal "
        "advice; work_product: prepared by or for counsel because of expected litigation; "
        "common_interest: privileged material shared with a party that shares the legal "
        f"interest; otherwise none. Choose the basis from: {bases}. Give the author, the "
        "recipients and the date as the document states them, and a one-line description "
        "for a privilege log that names the subject without revealing the advice. " + _CITE,
        reduce_instructions=f"{_COMMON} Parts of one document were reviewed for privilege "
        "separately. Decide for the whole document (privileged if any part is) and keep the "
        "citations that support the decision.",
        schema=_object(
            {
                "privileged": {"type": "boolean"},
                "basis": {"type": "string", "enum": list(PRIVILEGE_BASES)},
                "author": _text(max(20, max_text_chars // 4), "who wrote it, as it says"),
                "recipients": {
                    "type": "array",
                    "items": _text(max(20, max_text_chars // 4), "a recipient"),
                    "minItems": 0,
                    "maxItems": 3,
                },
                "date": _text(40, "the document's date as written"),
                "log_description": _text(max_text_chars, "the subject, without the advice"),
                "citations": _citations(max_text_chars),
            }
        ),
        options=options,
    )


def _responsiveness(options: dict[str, Any], max_text_chars: int) -> TaskSpec:
    case = (options.get("case") or "").strip()
    if not case:
        raise errors.ConfigurationError(
            "responsiveness needs --case FILE: the case and its requests for production"
        )
    if len(case) > MAX_CASE_CHARS:
        raise errors.ConfigurationError(
            f"the --case description has {len(case)} characters; at most {MAX_CASE_CHARS}"
        )
    return TaskSpec(
        name="responsiveness",
        version="1",
        instructions=f"{_COMMON} The case and its requests for production:\n{case}\n"
        "Decide whether the document is responsive to any request: yes, no or partly. Name "
        "the request it answers (or 'none') and say why. " + _CITE,
        reduce_instructions=f"{_COMMON} The case:\n{case}\nParts of one document were "
        "reviewed for responsiveness separately. Decide for the whole document (responsive "
        "if any part is) and keep the citations that support it.",
        schema=_object(
            {
                "responsive": {"type": "string", "enum": ["yes", "no", "partly"]},
                "request": _text(max(20, max_text_chars // 3), "the request it answers, or none"),
                "reason": _text(max_text_chars, "why"),
                "citations": _citations(max_text_chars),
            }
        ),
        options={"case": case},
    )


def _pii(options: dict[str, Any], max_text_chars: int) -> TaskSpec:
    categories = ", ".join(PII_CATEGORIES)
    return TaskSpec(
        name="pii",
        version="1",
        instructions=f"{_COMMON} Find the personal data in the document, one finding per "
        f"item, each with its category (one of: {categories}), the page label and the words "
        "exactly as they appear on that page. An empty list if there is none.",
        reduce_instructions=f"{_COMMON} Personal data was listed for consecutive parts of one "
        "document; list every finding once.",
        schema=_object(
            {
                "findings": {
                    "type": "array",
                    "items": _object(
                        {
                            "category": {"type": "string", "enum": list(PII_CATEGORIES)},
                            "page": {"type": "string", "minLength": 1, "maxLength": 20},
                            "quote": _text(
                                max(20, max_text_chars // 3), "the personal data as written"
                            ),
                        }
                    ),
                    "minItems": 0,
                    "maxItems": 4,
                }
            }
        ),
        options=options,
    )


def _bound_free_text(schema: Any, max_chars: int) -> Any:
    """A copy of ``schema`` where every unbounded free-text string gets a maxLength.

    Without a bound, the grammar lets a small model write one string until
    max_output_tokens cuts the JSON short; enums, consts and formats are
    already bounded by their own rules.
    """
    if isinstance(schema, list):
        return [_bound_free_text(entry, max_chars) for entry in schema]
    if not isinstance(schema, dict):
        return schema
    bounded = {key: _bound_free_text(value, max_chars) for key, value in schema.items()}
    is_free_text = bounded.get("type") == "string" and not (
        {"maxLength", "enum", "const", "format", "pattern"} & bounded.keys()
    )
    if is_free_text:
        bounded["maxLength"] = max_chars
    return bounded


TASK_BUILDERS: dict[str, Callable[[dict[str, Any], int], TaskSpec]] = {
    "summarize": _summarize,
    "classify": _classify,
    "extract": _extract,
    "prompt": _prompt,
    "privilege": _privilege,
    "responsiveness": _responsiveness,
    "pii": _pii,
}


def build_task(name: str, options: dict[str, Any], max_text_chars: int) -> TaskSpec:
    """The task ``name`` bound to ``options``; raises ConfigurationError if either is wrong."""
    builder = TASK_BUILDERS.get(name)
    if builder is None:
        known = ", ".join(sorted(TASK_BUILDERS))
        raise errors.ConfigurationError(f"unknown task {name!r}; known tasks: {known}")
    spec = builder(options, max_text_chars)
    # The bound options carry everything needed to rebuild the same task in a
    # worker (see task_for_run), so a run's prompt hash can be checked there.
    bound = {**spec.options, "max_text_chars": max_text_chars}
    if "version" in options:
        # A re-run that changes a task's prompt, schema or labels records it as
        # the task's next version (jobs/reruns.py); the version is in the hash.
        bound["version"] = str(options["version"])
        return dataclasses.replace(spec, version=bound["version"], options=bound)
    return dataclasses.replace(spec, options=bound)


def task_for_run(name: str, stored_options: dict[str, Any]) -> TaskSpec:
    """Rebuild the task a run was created with, from the options it stored."""
    max_text_chars = stored_options.get("max_text_chars")
    if not isinstance(max_text_chars, int):
        raise errors.ConfigurationError("the run's task options lack max_text_chars")
    return build_task(name, stored_options, max_text_chars)
