"""Several items in flight in one model context, with the real model.

The batcher against the serial path on the same prompt; calls from several
threads decoded together, each answer validated; a slot's cached prefix
reused; and a real ``sieve worker --sequences 3`` (Celery's thread pool, one
model) finishing a job through Redis and PostgreSQL with a lease identity per
lane and an intact audit chain.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db import audit
from db.models import AuditEvent, ItemRun, ItemState
from tests.integration.harness import start_worker, submit_folder, wait_for_run
from worker.config import ModelSettings
from worker.model import Completion, LocalModel
from worker.task_specs import build_task

pytestmark = [pytest.mark.integration, pytest.mark.model]

DOCUMENTS = [
    "Invoice 4471 from Acme Ltd: 300 crates of bolts, due on 1 March.",
    "Minutes of the safety committee: the forklift in bay 4 failed its inspection.",
    "Counsel advised the board that the merger needs the regulator's consent.",
    "The harbour master told the pilots that berth 9 is closed for dredging.",
]


@pytest.fixture(scope="module")
def batched_model(small_model_settings: ModelSettings) -> LocalModel:
    model = LocalModel(small_model_settings.model_copy(update={"parallel_sequences": 4}))
    yield model
    model.close()


def _ask(
    model: LocalModel, text: str, max_tokens: int = 160, deterministic: bool = False
) -> Completion:
    task = build_task("summarize", {}, 80)
    completion = model.complete_json(
        task.instructions, text, task.schema, max_tokens, deterministic=deterministic
    )
    task.validate(completion.output)
    return completion


def test_one_batched_call_answers_exactly_as_the_serial_path(
    small_model: LocalModel, batched_model: LocalModel
) -> None:
    # Both evaluate the whole prompt afresh: a prefix reused from an earlier call
    # was computed in other batches, and greedy decoding can tip on the rounding.
    serial = _ask(small_model, DOCUMENTS[0], deterministic=True)
    batched = _ask(batched_model, DOCUMENTS[0])  # the module's first call: a fresh slot
    assert batched.text == serial.text
    assert batched.prompt_tokens == serial.prompt_tokens
    assert batched.completion_tokens == serial.completion_tokens


def test_a_deterministic_call_on_a_batching_model_is_decoded_alone_at_full_context(
    small_model: LocalModel, batched_model: LocalModel
) -> None:
    long_document = " ".join(DOCUMENTS * 6)  # past what a tokenising-only context could hold
    alone = _ask(batched_model, long_document, deterministic=True)
    serial = _ask(small_model, long_document, deterministic=True)
    assert alone.text == serial.text and alone.prompt_tokens > 256


def test_calls_from_several_threads_are_decoded_together_and_each_validates(
    batched_model: LocalModel,
) -> None:
    answers: dict[int, Completion] = {}
    failures: list[BaseException] = []

    def ask(n: int) -> None:
        try:
            answers[n] = _ask(batched_model, DOCUMENTS[n])
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(DOCUMENTS))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures
    assert sorted(answers) == list(range(len(DOCUMENTS)))
    assert batched_model.most_sequences_in_flight() >= 2


def test_a_slot_keeps_the_task_instructions_for_the_next_call(batched_model: LocalModel) -> None:
    _ask(batched_model, DOCUMENTS[1])
    again = _ask(batched_model, DOCUMENTS[2])
    assert again.evaluated_prompt_tokens is not None
    # Only the document (and the template's closing tokens) is evaluated again.
    assert again.evaluated_prompt_tokens < again.prompt_tokens / 2


def test_a_prompt_longer_than_a_sequence_s_context_is_a_model_error(
    batched_model: LocalModel,
) -> None:
    from worker import errors

    task = build_task("summarize", {}, 80)
    with pytest.raises(errors.ModelError, match="context window"):
        batched_model.complete_json(task.instructions, "word " * 5000, task.schema, 16)


@pytest.mark.slow
def test_a_worker_with_three_lanes_finishes_a_job_under_a_lease_identity_per_lane(
    sieve_env: dict[str, str], database_url: str, db_session: Session, tmp_path: Path
) -> None:
    from tests import services

    folder = tmp_path / "letters"
    folder.mkdir()
    for n in range(6):
        (folder / f"letter-{n}.txt").write_text(f"{DOCUMENTS[n % 4]} (letter {n})\n")
    env = {**sieve_env, "SIEVE_WORKER__QUEUE": services.unique_queue_name()}
    worker = start_worker(env, tmp_path / "lanes.log", extra_args=["--sequences", "3"])
    try:
        job_id = submit_folder(env, folder)
        run = wait_for_run(database_url, job_id, timeout=600)
    finally:
        worker.stop()
    log = worker.log()
    assert "3 item(s) in flight per process" in log
    states = db_session.scalars(select(ItemRun.state).where(ItemRun.run_id == run.id)).all()
    assert states == [ItemState.done] * 6, log[-3000:]
    actors = set(
        db_session.scalars(
            select(AuditEvent.actor).where(
                AuditEvent.job_id == job_id, AuditEvent.action == "result.stored"
            )
        )
    )
    assert actors and all("/" in actor for actor in actors)
    assert audit.verify_chain(db_session, audit.chain_name(job_id)) is None


def test_parallel_sequences_refuse_the_gbnf_engine_before_loading_anything() -> None:
    from worker import errors

    settings = ModelSettings(parallel_sequences=2, constraint_engine="gbnf")
    with pytest.raises(errors.ConfigurationError, match="llguidance"):
        LocalModel(settings)
