"""Constrained decoding and saved task prefixes, with the real model.

Both engines must give schema-valid JSON for every task; the saved prefix of
an interleaved task must change how many prompt tokens are evaluated, never
the answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import jsonschema
import pytest

from worker.config import ModelSettings
from worker.model import LocalModel
from worker.prefix_cache import MIN_PREFIX_TOKENS
from worker.task_specs import TaskSpec, build_task

pytestmark = [pytest.mark.integration, pytest.mark.model]

DOCUMENTS = [
    "--- page 1 ---\nMemo from Alice Brown to the board, 3 March 2024: the Acme Ltd supply "
    "contract is renewed for 120,000 EUR a year.",
    "--- page 1 ---\nE-mail from Bob Stone to counsel Carol Diaz asking for legal advice on the "
    "merger terms before the vote.",
    "--- page 1 ---\nInvoice 4471 from Harbour Pilots for berth seven, due 30 April, 2,300 EUR.",
]


def _tasks() -> list[TaskSpec]:
    review = build_task("classify", {"labels": ["privileged", "not_privileged"]}, 80)
    # A review instruction of the length a firm's protocol has (~600 tokens).
    protocol = " ".join(
        f"Rule {n}: a communication is privileged when counsel gives or is asked for legal "
        "advice in confidence; forwarding to third parties may waive it."
        for n in range(20)
    )
    long_review = TaskSpec(
        name=review.name,
        version=review.version,
        instructions=f"{review.instructions} {protocol}",
        reduce_instructions=review.reduce_instructions,
        schema=review.schema,
        options=review.options,
    )
    return [long_review, build_task("summarize", {}, 80)]


def _model(**overrides: object) -> LocalModel:
    settings = {"n_ctx": 2048, "n_threads": 2, "max_text_chars": 80} | overrides
    return LocalModel(ModelSettings(**settings))


@pytest.fixture(scope="module")
def models() -> Iterator[dict[str, LocalModel]]:
    loaded = {engine: _model(constraint_engine=engine) for engine in ("llguidance", "gbnf")}
    yield loaded
    for model in loaded.values():
        model.close()


@pytest.mark.parametrize("engine", ["llguidance", "gbnf"])
def test_each_engine_gives_schema_valid_answers_for_each_task(
    models: dict[str, LocalModel], engine: str
) -> None:
    model = models[engine]
    assert model.sampling["constraint_engine"] == engine
    for task in _tasks():
        completion = model.complete_json(task.instructions, DOCUMENTS[1], task.schema, 200)
        jsonschema.validate(completion.output, task.schema)


def test_the_token_mask_writes_compact_json(models: dict[str, LocalModel]) -> None:
    task = build_task("summarize", {}, 80)
    completion = models["llguidance"].complete_json(
        task.instructions, DOCUMENTS[0], task.schema, 200
    )
    # whitespace_flexible=False: no gaps between JSON tokens for a tiny model to fill.
    assert completion.text.startswith('{"summary":"')


def _interleave(model: LocalModel) -> list[tuple[dict, int, int | None]]:
    """Both tasks, alternating, over the documents: (answer, prompt tokens, evaluated)."""
    long_review, summary = _tasks()
    outcomes = []
    for document in DOCUMENTS:
        for task in (long_review, summary):
            completion = model.complete_json(task.instructions, document, task.schema, 200)
            outcomes.append(
                (completion.output, completion.prompt_tokens, completion.evaluated_prompt_tokens)
            )
    return outcomes


def test_interleaved_tasks_evaluate_only_their_documents_once_prefixes_are_saved(
    models: dict[str, LocalModel],
) -> None:
    outcomes = _interleave(models["llguidance"])
    # From each task's third call on, only the document's own tokens are evaluated.
    for _answer, prompt_tokens, evaluated_tokens in outcomes[4:]:
        assert evaluated_tokens is not None
        assert evaluated_tokens < prompt_tokens - MIN_PREFIX_TOKENS
    _answer, long_prompt, long_evaluated = outcomes[4]
    assert long_prompt > 500 and long_evaluated < 100


def test_saved_prefixes_keep_answers_reproducible_and_decisions_unchanged() -> None:
    """The same calls in the same order give the same answers; labels match a cold start.

    Text may differ from a cold start in low-probability tokens: a prefix
    evaluated in another batch shape (llama.cpp's own reuse does the same)
    changes the last bits of the KV cache.
    """
    first, second = _model(), _model()
    try:
        assert [o[0] for o in _interleave(first)] == [o[0] for o in _interleave(second)]
        long_review = _tasks()[0]
        for document, outcome in zip(DOCUMENTS, _interleave(first)[::2], strict=True):
            cold = _model()
            answer = cold.complete_json(
                long_review.instructions, document, long_review.schema, 200
            ).output
            cold.close()
            assert answer["label"] == outcome[0]["label"]
    finally:
        first.close()
        second.close()
