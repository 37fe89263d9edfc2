"""Rows of the whole system: submission, and items through the pipeline.

These run on the embedded default (SQLite in a scratch data directory, the
pipeline in this process): the same code a worker runs, without servers, so
the bench needs nothing but the checkout.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

from sqlalchemy import func, select

from bench.model_rows import DOCUMENTS
from bench.rows import Row, timed
from db.models import Result
from jobs import commands
from jobs.settings import Settings
from jobs.submit import submit
from worker.model import build_chat_messages
from worker.task_specs import build_task


def _settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=None,
        model={"n_ctx": 2048, "max_text_chars": 200, "max_output_tokens": 400},
    )


def submit_files(scratch: Path, file_count: int) -> Row:
    """files/s for many small files (hashing, content store, database) vs hash-and-copy."""
    inputs = scratch / "small-files"
    for n in range(file_count):
        folder = inputs / f"{n // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note-{n:05d}.txt").write_text(f"Note {n}: delivery {n * 7} crates.\n")
    copies = scratch / "bare-copies"
    copies.mkdir()

    def bare() -> None:
        for path in sorted(inputs.rglob("*.txt")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            shutil.copyfile(path, copies / digest)

    settings = _settings(scratch / "submit-data")
    engine, session_factory = commands.open_database(settings)
    task = build_task("summarize", {}, 200)

    def through_sieve() -> None:
        submit(session_factory, settings, paths=[inputs], task=task, name="bench", executor="bench")

    sieve_seconds = timed(through_sieve)
    engine.dispose()
    return Row("submit", file_count / sieve_seconds, file_count / timed(bare), "files/s")


def model_end_to_end(scratch: Path, rounds: int) -> Row:
    """Output tok/s through submit → pipeline → results vs a bare free-generation loop."""
    from jobs.embedded import build_in_process_context, run_item_runs

    inputs = scratch / "documents"
    inputs.mkdir()
    texts = [f"{document} (copy {n})" for n in range(rounds) for document in DOCUMENTS]
    for n, text in enumerate(texts):
        (inputs / f"doc-{n:03d}.txt").write_text(text)
    settings = _settings(scratch / "e2e-data")
    engine, session_factory = commands.open_database(settings)
    task = build_task("summarize", {}, settings.model.max_text_chars)
    context = build_in_process_context(settings, session_factory)
    started = time.perf_counter()
    submission = submit(
        session_factory, settings, paths=[inputs], task=task, name="bench", executor="bench"
    )
    run_item_runs(context, submission.item_run_ids)
    sieve_seconds = time.perf_counter() - started
    with session_factory() as session:
        tokens = session.scalar(
            select(func.sum(Result.completion_tokens)).where(Result.run_id == submission.run_id)
        )
        results = session.scalars(select(Result).where(Result.run_id == submission.run_id)).all()
        lengths = [result.completion_tokens for result in results]
        stage_seconds = {
            stage: round(sum(r.timings.get(stage, 0.0) for r in results) / len(results), 2)
            for stage in ("extract_seconds", "analyse_seconds")
        }
    engine.dispose()
    llama = context.model._llama
    bare_tokens, bare_started = 0, time.perf_counter()
    for text, length in zip(texts, lengths, strict=False):
        response = llama.create_chat_completion(
            messages=build_chat_messages(task.instructions, text),
            max_tokens=max(1, length),
            temperature=0.0,
            seed=1,
        )
        bare_tokens += int(response["usage"]["completion_tokens"])
    bare_seconds = time.perf_counter() - bare_started
    items_per_minute = len(texts) / sieve_seconds * 60
    return Row(
        "model_end_to_end",
        (tokens or 0) / sieve_seconds,
        bare_tokens / bare_seconds,
        "output tok/s",
        notes={
            "items": len(texts),
            "items_per_min": round(items_per_minute, 1),
            "mean_" + "_".join(stage_seconds): list(stage_seconds.values()),
        },
    )


def lanes(scratch: Path, rounds: int, lane_count: int = 4) -> Row:
    """Output tok/s through the whole system with ``lane_count`` items in flight vs one.

    The same documents through submit → pipeline → results twice, each in a
    data directory of its own: once with one item at a time, once with
    ``model.parallel_sequences`` lanes, whose model calls the batcher decodes
    together (``worker/sequence_batcher.py``). Both load their own model.
    """
    from jobs.embedded import run_item_runs
    from worker import leases
    from worker.model import LocalModel
    from worker.pipeline import PipelineContext

    inputs = scratch / "lane-documents"
    inputs.mkdir()
    texts = [f"{document} (lane copy {n})" for n in range(rounds) for document in DOCUMENTS]
    for n, text in enumerate(texts):
        (inputs / f"doc-{n:03d}.txt").write_text(text)

    def through_system(sequences: int) -> tuple[float, int]:
        settings = _settings(scratch / f"lanes-{sequences}")
        settings = settings.model_copy(
            update={"model": settings.model.model_copy(update={"parallel_sequences": sequences})}
        )
        engine, session_factory = commands.open_database(settings)
        model = LocalModel(settings.model)
        context = PipelineContext(
            settings, session_factory, model, leases.process_identity("bench")
        )
        task = build_task("summarize", {}, settings.model.max_text_chars)
        started = time.perf_counter()
        submission = submit(
            session_factory, settings, paths=[inputs], task=task, name="bench", executor="bench"
        )
        run_item_runs(context, submission.item_run_ids)
        seconds = time.perf_counter() - started
        with session_factory() as session:
            tokens = session.scalar(
                select(func.sum(Result.completion_tokens)).where(Result.run_id == submission.run_id)
            )
        peak = model.most_sequences_in_flight()
        model.close()
        engine.dispose()
        return (tokens or 0) / seconds, peak

    one, _ = through_system(1)
    several, peak = through_system(lane_count)
    return Row(
        "lanes",
        several,
        one,
        f"output tok/s ({lane_count} lanes vs 1, whole system)",
        notes={"items": len(texts), "most_in_flight": peak},
    )


def useless_input(scratch: Path) -> Row:
    """Prompt tokens the model is given for a job of blank, repeated and duplicate input.

    Issue 9's "nothing useless sent to the model", counted: a 20-page PDF of
    which 6 pages are blank and 5 show one disclaimer word for word, submitted
    twice (the second copy byte-identical). Strictly: 5 pages carry the same
    disclaimer, so 4 repeat it. Sieve de-duplicates the copy at
    submit and leaves the blank and repeated pages out of the prompt; the
    baseline is a naive loop that gives the model every page of every file,
    one call per file, through the same chat template (its prompt tokens as
    llama.cpp counts them). Lower is better.
    """
    from db.models import StoredSegment
    from jobs.embedded import build_in_process_context, run_item_runs
    from tests import pdfgen

    disclaimer = "This message and its attachments are confidential and may be privileged."
    pages: list[str] = []
    for n in range(20):
        kind = n % 10
        if kind in (2, 5, 8):
            pages.append("")
        elif kind in (3, 7) or n == 19:
            pages.append(disclaimer)
        else:
            pages.append(pdfgen.report_page_text(n, 40))
    inputs = scratch / "useless"
    inputs.mkdir()
    pdfgen.make_text_pdf(inputs / "report.pdf", pages)
    shutil.copyfile(inputs / "report.pdf", inputs / "report-copy.pdf")
    settings = Settings(
        data_dir=scratch / "useless-data",
        database_url=None,
        model={"n_ctx": 4096, "max_text_chars": 20000, "max_output_tokens": 200},
    )
    engine, session_factory = commands.open_database(settings)
    # A label and a short reason: the test model fills a summary to any length.
    task = build_task("classify", {"labels": ["privileged", "not_privileged"]}, 20000)
    context = build_in_process_context(settings, session_factory)
    submission = submit(
        session_factory, settings, paths=[inputs], task=task, name="bench", executor="bench"
    )
    run_item_runs(context, submission.item_run_ids)
    with session_factory() as session:
        results = session.scalars(select(Result).where(Result.run_id == submission.run_id)).all()
        sieve_tokens = sum(result.prompt_tokens for result in results)
        repeats = sum(len((r.inputs or {}).get("duplicate_segments_skipped", [])) for r in results)
        stored = session.scalars(select(StoredSegment)).all()
        blank = sum(1 for segment in stored if not segment.text.strip())
    engine.dispose()
    llama = context.model._llama
    naive_tokens = 0
    for _copy in range(2):
        content = "\n\n".join(f"page {n + 1}: {text}" for n, text in enumerate(pages))
        response = llama.create_chat_completion(
            messages=build_chat_messages(task.instructions, content), max_tokens=1
        )
        naive_tokens += int(response["usage"]["prompt_tokens"])
    return Row(
        "useless_input",
        sieve_tokens,
        naive_tokens,
        "prompt tokens for the job",
        higher_is_better=False,
        notes={
            "pages": len(pages) * 2,
            "duplicate_files_skipped": len(submission.duplicate_paths),
            "blank_pages_skipped": blank,
            "repeated_pages_skipped": repeats,
            "model_calls": sum(result.model_calls for result in results),
        },
    )
