"""The worker's vision path, run for real with a tiny generated projector.

No vision GGUF exists in the registries, so :mod:`tests.mmprojgen` writes a
random-weight Gemma 3 projector for the bundled model. With it libmtmd really
loads, pictures really become image tokens, and the worker's ``supports_vision``
path (pictures chosen, sent, counted, timed, the answer constrained by the
token mask and validated) runs end to end: submit → Redis → a real worker →
Postgres. The answers are meaningless; the plumbing is real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from PIL import Image
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.models import Item, ItemRun, Result
from tests import mmprojgen, services
from tests.integration.harness import WorkerProcess, submit_folder, wait_for_run
from worker.config import ModelSettings
from worker.model import LocalModel, bundled_model_path
from worker.task_specs import build_task

pytestmark = [pytest.mark.integration, pytest.mark.model]

# The projector's 16 image tokens plus mtmd's begin and end markers.
IMAGE_TOKENS = mmprojgen.image_tokens_per_image() + 2


@pytest.fixture(scope="module")
def tiny_mmproj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mmproj")
    return mmprojgen.write_tiny_mmproj(directory / "tiny-mmproj.gguf", bundled_model_path())


@pytest.fixture(scope="module")
def seeing_model(tiny_mmproj: Path) -> Any:
    model = LocalModel(
        ModelSettings(
            mmproj_path=tiny_mmproj,
            chat_template=mmprojgen.GEMMA3_CHAT_TEMPLATE,
            image_tokens=IMAGE_TOKENS,
            n_ctx=2048,
            n_threads=2,
            max_text_chars=80,
        )
    )
    yield model
    model.close()


def _picture(path: Path, colour: tuple[int, int, int]) -> str:
    Image.new("RGB", (120, 90), colour).save(path)
    return str(path)


def test_the_runtime_sends_pictures_as_image_tokens_under_the_schema(
    seeing_model: LocalModel, tmp_path: Path
) -> None:
    task = build_task("summarize", {}, 80)
    without = seeing_model.complete_json(task.instructions, "A photograph.", task.schema, 160)
    pictures = [_picture(tmp_path / f"{n}.png", (40 * n, 90, 200)) for n in range(2)]
    with_two = seeing_model.complete_json(
        task.instructions, "A photograph.", task.schema, 160, images=pictures
    )
    assert seeing_model.info.supports_vision
    assert with_two.prompt_tokens - without.prompt_tokens >= 2 * mmprojgen.image_tokens_per_image()
    jsonschema.validate(with_two.output, task.schema)
    assert with_two.completion_tokens > 0 and with_two.seconds > 0


def test_a_projector_for_a_model_without_a_chat_template_is_refused_at_start(
    tiny_mmproj: Path,
) -> None:
    from worker import errors

    with pytest.raises(errors.ModelLoadError, match="chat template"):
        LocalModel(ModelSettings(mmproj_path=tiny_mmproj, n_ctx=1024, n_threads=2))


@pytest.mark.slow
def test_a_worker_with_a_projector_analyses_pictures_end_to_end(
    sieve_env: dict[str, str],
    workers: Callable[..., WorkerProcess],
    db_engine: Engine,
    database_url: str,
    tiny_mmproj: Path,
    tmp_path: Path,
) -> None:
    env = sieve_env | {
        "SIEVE_WORKER__QUEUE": services.unique_queue_name(),
        "SIEVE_MODEL__MMPROJ_PATH": str(tiny_mmproj),
        "SIEVE_MODEL__CHAT_TEMPLATE": mmprojgen.GEMMA3_CHAT_TEMPLATE,
        "SIEVE_MODEL__IMAGE_TOKENS": str(IMAGE_TOKENS),
    }
    folder = tmp_path / "pictures"
    folder.mkdir()
    # No text for OCR: a model that cannot see fails it with model_capability.
    _picture(folder / "blank.png", (40, 120, 200))
    worker = workers(env, "vision")
    job_id = submit_folder(env, folder)
    run = wait_for_run(database_url, job_id, timeout=300)
    assert run.number == 1, worker.log

    with Session(db_engine) as session:
        item_run = session.scalars(select(ItemRun).join(Item).where(Item.job_id == job_id)).one()
        result = session.scalars(
            select(Result).where(
                Result.run_id == item_run.run_id, Result.item_id == item_run.item_id
            )
        ).one()
    assert item_run.state == "done", item_run.error_message
    assert result.inputs["pictures_sent"] == 1
    assert result.prompt_tokens >= mmprojgen.image_tokens_per_image()
    assert result.timings["analyse_seconds"] > 0
    jsonschema.validate(result.output, build_task("summarize", {}, 100).schema)


def test_with_a_projector_parallel_sequences_keep_text_calls_on_the_serial_path(
    tiny_mmproj: Path,
) -> None:
    """The batcher renders prompts with the plain chat format; a multimodal model has its own."""
    from worker.task_specs import build_task

    model = LocalModel(
        ModelSettings(
            mmproj_path=tiny_mmproj,
            chat_template=mmprojgen.GEMMA3_CHAT_TEMPLATE,
            n_ctx=1024,
            n_threads=2,
            max_output_tokens=64,
            parallel_sequences=2,
        )
    )
    try:
        task = build_task("summarize", {}, 40)
        answer = model.complete_json(task.instructions, "A short note.", task.schema, 96)
        task.validate(answer.output)
        assert model.most_sequences_in_flight() == 1  # no batcher was made
    finally:
        model.close()
