"""Rows of the model path: constrained decoding, saved prefixes, threads.

Every row loads the bundled model (or ``SIEVE_MODEL__PATH``) itself and
measures its baseline in the same process, on the same prompts.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from typing import Any

import jsonschema

from bench.rows import Row
from worker.config import ModelSettings
from worker.model import LocalModel, build_chat_messages, resolve_model_path
from worker.task_specs import TaskSpec, build_task

DOCUMENTS = [
    "--- page 1 ---\nMemo from Alice Brown to the board, 3 March 2024: the Acme Ltd supply "
    "contract is renewed for 120,000 EUR a year; delivery starts in June.",
    "--- page 1 ---\nE-mail from Bob Stone to counsel Carol Diaz asking for legal advice on the "
    "merger terms before the board vote on Friday.",
    "--- page 1 ---\nInvoice 4471 from Harbour Pilots for berth seven, due 30 April: 2,300 EUR.",
    "--- page 1 ---\nMinutes of the safety committee, 12 May: two near misses in loading bay "
    "three; forklift training is to be repeated for the night shift.",
]


def _review_task() -> TaskSpec:
    """A privilege review whose instruction carries a ~600-token protocol."""
    review = build_task("classify", {"labels": ["privileged", "not_privileged"]}, 200)
    protocol = " ".join(
        f"Rule {n}: a communication is privileged when counsel gives or is asked for legal "
        "advice in confidence; forwarding it to third parties may waive the privilege."
        for n in range(20)
    )
    return TaskSpec(
        name="review",
        version="bench",
        instructions=f"{review.instructions} {protocol}",
        reduce_instructions=review.reduce_instructions,
        schema=review.schema,
        options=review.options,
    )


def _tasks() -> list[TaskSpec]:
    return [build_task("summarize", {}, 200), _review_task()]


def _free_tokens_per_second(model: LocalModel, calls: list[tuple[str, str, int]]) -> float:
    """The bare loop: the same prompts through llama-cpp-python, no schema, same lengths."""
    llama = model._llama
    tokens = 0
    started = time.perf_counter()
    for instructions, content, length in calls:
        response = llama.create_chat_completion(
            messages=build_chat_messages(instructions, content),
            max_tokens=length,
            temperature=0.0,
            seed=1,
        )
        tokens += int(response["usage"]["completion_tokens"])
    return tokens / (time.perf_counter() - started)


def constrained_output(settings: ModelSettings, rounds: int) -> list[Row]:
    """tok/s with each task's schema enforced, per engine, vs free generation."""
    rows = []
    for engine in ("llguidance", "gbnf"):
        model = LocalModel(settings.model_copy(update={"constraint_engine": engine}))
        calls, tokens, valid, total, seconds = [], 0, 0, 0, 0.0
        for _ in range(rounds):
            for task in _tasks():
                for document in DOCUMENTS:
                    completion = model.complete_json(
                        task.instructions, document, task.schema, settings.max_output_tokens
                    )
                    total += 1
                    valid += _validates(completion.output, task.schema)
                    tokens += completion.completion_tokens
                    seconds += completion.seconds
                    calls.append(
                        (task.instructions, document, max(1, completion.completion_tokens))
                    )
        free = _free_tokens_per_second(model, calls)
        model.close()
        name = "constrained_output" if engine == "llguidance" else "constrained_output_gbnf"
        rows.append(Row(name, tokens / seconds, free, "tok/s", notes={"valid": f"{valid}/{total}"}))
    return rows


def _validates(output: dict[str, Any], schema: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(output, schema)
    except jsonschema.ValidationError:
        return False
    return True


def shared_prefix(settings: ModelSettings, rounds: int) -> Row:
    """Prompt tokens evaluated per item, two tasks interleaved, vs the item's own tokens."""
    model = LocalModel(settings)
    evaluated, own = 0, 0
    for round_number in range(rounds + 1):
        for document in DOCUMENTS:
            for task in _tasks():
                completion = model.complete_json(
                    task.instructions, document, task.schema, settings.max_output_tokens
                )
                if round_number == 0:
                    continue  # the first round learns each task's prefix
                evaluated += completion.evaluated_prompt_tokens or completion.prompt_tokens
                own += model.count_tokens(document)
    restores = model._prefixes.restores if model._prefixes else 0
    model.close()
    return Row(
        "shared_prefix",
        evaluated / (rounds * len(DOCUMENTS) * 2),
        own / (rounds * len(DOCUMENTS) * 2),
        "prompt tok evaluated/item",
        higher_is_better=False,
        notes={"prefix_restores": restores},
    )


def _generate_in_child(settings_json: str, seconds: float, start: Any, results: Any) -> None:
    settings = ModelSettings.model_validate_json(settings_json)
    model = LocalModel(settings)
    llama = model._llama
    start.wait()
    tokens, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        response = llama.create_completion(
            "Write about the harbour:", max_tokens=48, temperature=0.0, seed=1
        )
        tokens += int(response["usage"]["completion_tokens"])
        llama.reset()
    results.put(tokens / (time.perf_counter() - started))
    model.close()


def _processes_tokens_per_second(settings: ModelSettings, processes: int, seconds: float) -> float:
    """Aggregate generation tok/s of ``processes`` model processes running at once."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    children = [
        context.Process(
            target=_generate_in_child, args=(settings.model_dump_json(), seconds, start, results)
        )
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    time.sleep(8)  # every child loads its model (llguidance's vocabulary table included)
    start.set()
    rates = [results.get(timeout=seconds + 120) for _ in children]
    for child in children:
        child.join()
    return sum(rates)


def threads(settings: ModelSettings, seconds: float, processes: int = 2) -> Row:
    """A 2-process worker with Sieve's default threads vs the best setting tried."""
    from worker import capacity

    default = capacity.threads_per_process(processes)
    tried = {
        count: _processes_tokens_per_second(
            settings.model_copy(update={"n_threads": count}), processes, seconds
        )
        for count in sorted({1, default, capacity.machine_cores()})
    }
    return Row(
        "threads",
        tried[default],
        max(tried.values()),
        "tok/s (2 processes)",
        notes={
            "default_threads": default,
            "tried": {str(k): round(v, 1) for k, v in tried.items()},
        },
    )


def model_settings() -> ModelSettings:
    """The bench's model: the configured GGUF or the bundled one, n_ctx 2048."""
    settings = ModelSettings(n_ctx=2048, max_text_chars=200, max_output_tokens=400)
    resolve_model_path(settings)
    return settings


def describe(settings: ModelSettings) -> str:
    return json.dumps({"model": str(resolve_model_path(settings)), "n_ctx": settings.n_ctx})
