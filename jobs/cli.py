"""The ``sieve`` command line.

Exit codes (other tools rely on them): 0 success; 1 the run completed but some
items failed or were unsupported; 2 a usage error, or the run could not start.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from db import migrate
from db.models import Job, Run
from jobs import commands
from jobs import results as results_module
from jobs import status as status_module
from jobs.commands import EXIT_ITEMS_FAILED, EXIT_OK
from jobs.settings import Settings, reset_settings_cache
from jobs.submit import (
    DEFAULT_RUN_OPTIONS,
    RunOptions,
    Submission,
    submit,
    submitter_identity,
)
from worker import errors
from worker.task_specs import TaskSpec

if TYPE_CHECKING:
    from worker.pipeline import ItemOutcome

logger = logging.getLogger(__name__)

# One line, on stderr with the rest of the progress, wherever the bundled model answers.
SMALL_MODEL_NOTICE = (
    "note: answers come from the bundled Gemma 3 270M test model, which checks the machinery "
    "but reads poorly; point Sieve at a real GGUF with SIEVE_MODEL__PATH (see `sieve models`)"
)
console = Console(stderr=True)


def task_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options that choose and parameterise a task."""
    decorators = [
        click.option(
            "--task",
            "task",
            default="summarize",
            show_default=True,
            help="summarize, classify, extract, prompt, privilege, responsiveness or pii",
        ),
        click.option("--labels", help="classify: comma-separated labels"),
        click.option(
            "--schema",
            type=click.Path(path_type=Path, dir_okay=False),
            help="extract: a JSON schema file for the fields to extract",
        ),
        click.option("--prompt", help="prompt: the free-text instruction"),
        click.option(
            "--case",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="responsiveness: a text file describing the case and its requests",
        ),
        click.option("--name", help="a name for the job (default: the paths)"),
    ]
    return commands.with_options(function, decorators)


@click.group(cls=commands.SieveGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Data directory (env SIEVE_DATA_DIR).",
)
@click.option("--database-url", help="Database URL (env SIEVE_DATABASE_URL).")
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def cli(data_dir: Path | None, database_url: str | None, verbose: int) -> None:
    """Sieve: batch document processing with a local model. Nothing leaves this machine."""
    # Options become environment variables so that worker child processes,
    # which read settings themselves, see the same configuration.
    if data_dir is not None:
        os.environ["SIEVE_DATA_DIR"] = str(data_dir.resolve())
    if database_url is not None:
        os.environ["SIEVE_DATABASE_URL"] = database_url
    reset_settings_cache()
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# --- run and submit -----------------------------------------------------------


def _ingest_with_progress(
    settings: Settings,
    session_factory: sessionmaker[Session],
    paths: tuple[Path, ...],
    task: TaskSpec,
    name: str | None,
    executor: str,
    options: RunOptions = DEFAULT_RUN_OPTIONS,
) -> Submission:
    with Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        TextColumn("{task.completed} files"),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as progress:
        ingest_task = progress.add_task("", total=None)

        def advance(path: Path) -> None:
            progress.update(ingest_task, advance=1, description=path.name[:40])

        return submit(
            session_factory,
            settings,
            paths=list(paths),
            task=task,
            name=name,
            executor=executor,
            progress=advance,
            options=options,
        )


def run_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The options that say how a job's first run is run."""
    decorators = [
        click.option(
            "--priority",
            type=click.Choice(["high", "normal", "low"]),
            default="normal",
            show_default=True,
            help="Workers take every waiting high item before normal ones, normal before low.",
        ),
        click.option("--custodian", help="Whose files these are (recorded on every item)."),
        click.option(
            "--custodian-folders",
            is_flag=True,
            help="Each folder directly under a submitted folder is one custodian's collection.",
        ),
        click.option(
            "--dedup",
            type=click.Choice(["global", "custodian", "none"]),
            default="global",
            show_default=True,
            help="De-duplicate top-level documents across the job, within each custodian, or not.",
        ),
        click.option(
            "--unit",
            type=click.Choice(["series", "study", "instance"]),
            default="series",
            show_default=True,
            help="DICOM: one item per series (its instances in spatial order), per study, "
            "or per instance file.",
        ),
        click.option(
            "--deterministic",
            is_flag=True,
            help="Greedy decoding, fixed seed, one sequence, nothing reused between items.",
        ),
    ]
    return commands.with_options(function, decorators)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@task_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "jsonl", "csv"]),
    default="table",
    show_default=True,
    help="How to print the results.",
)
@commands.output_option
@run_options
def run(
    paths: tuple[Path, ...],
    task: str,
    labels: str | None,
    schema: Path | None,
    prompt: str | None,
    case: Path | None,
    name: str | None,
    output_format: str,
    output: Path | None,
    priority: str,
    custodian: str | None,
    custodian_folders: bool,
    dedup: str,
    unit: str,
    deterministic: bool,
) -> None:
    """Process files and folders here, in this process, and print the results."""
    from jobs.embedded import build_in_process_context, run_item_runs

    settings = commands.load_settings()
    task_spec = commands.task_from_options(settings, task, labels, schema, prompt, case)
    engine, session_factory = commands.open_database(settings)
    options = _run_options(priority, deterministic, custodian, custodian_folders, dedup, unit)
    submission = _ingest_with_progress(
        settings, session_factory, paths, task_spec, name, "in_process", options
    )
    console.print(
        f"job [bold]{submission.job_id}[/]: {submission.file_count} files, "
        f"{submission.item_count} distinct ({len(submission.duplicate_paths)} duplicates)"
    )
    _print_dicom_index(submission)
    with console.status("loading the model…"):
        context = build_in_process_context(settings, session_factory)
    console.print(f"model: {context.model.info.name} ({context.model.info.sha256[:12]}…)")
    if settings.model.path is None:
        console.print(SMALL_MODEL_NOTICE)
    with Progress(
        TextColumn("[bold]{task.fields[task_name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as progress:
        bar = progress.add_task("", total=submission.item_count, task_name=task_spec.name)

        def advance(outcome: ItemOutcome) -> None:
            # Files found inside an item (messages, attachments) join the total as they appear.
            found = len(outcome.new_item_run_ids)
            progress.update(bar, total=progress.tasks[bar].total + found, advance=1)

        run_item_runs(context, submission.item_run_ids, on_outcome=advance)
    exit_code = _print_results(session_factory, submission.job_id, None, output_format, output)
    engine.dispose()
    sys.exit(exit_code)


def _run_options(
    priority: str,
    deterministic: bool,
    custodian: str | None,
    custodian_folders: bool,
    dedup: str,
    unit: str,
) -> RunOptions:
    """The per-run options ``sieve run`` and ``sieve submit`` share, from their flags."""
    return RunOptions(
        priority=priority,
        deterministic=deterministic,
        custodian=custodian,
        custodian_folders=custodian_folders,
        dedup=dedup,
        unit=unit,
    )


def _print_dicom_index(submission: Submission) -> None:
    """What the header pass made of the DICOM files, when there were any."""
    if submission.dicom_instances:
        console.print(
            f"DICOM: {submission.dicom_instances} instances indexed, "
            f"{submission.dicom_units} series/study items"
        )
    for fileset in submission.filesets:
        missing = f", {len(fileset.missing)} not submitted" if fileset.missing else ""
        if fileset.invalid:
            missing += f", {fileset.invalid} invalid file IDs (not followed)"
        problem = f" (unreadable: {fileset.problem})" if fileset.problem else ""
        console.print(
            f"DICOMDIR {fileset.path}: read as an index, {fileset.referenced} instances"
            f"{missing}{problem}"
        )


def _print_dry_run(settings: Settings, paths: tuple[Path, ...]) -> None:
    """Counts and an estimate for ``paths``, from the files and this machine's history."""
    from jobs import estimates
    from jobs.submit import walk_inputs
    from worker.model import configured_model

    facts = estimates.inspect_paths(walk_inputs(list(paths)), settings.media)
    engine, session_factory = commands.open_database(settings)
    with session_factory() as session:
        rates = estimates.measured_rates(session, configured_model(settings.model)[0])
    engine.dispose()
    for line in estimates.estimate(facts, rates).describe():
        click.echo(line, err=True)
    console.print("dry run: nothing recorded")
    click.echo(len(facts))


@cli.command(name="submit")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@task_options
@run_options
@click.option("--dry-run", is_flag=True, help="Count the items and estimate; record nothing.")
def submit_command(
    paths: tuple[Path, ...],
    task: str,
    labels: str | None,
    schema: Path | None,
    prompt: str | None,
    case: Path | None,
    name: str | None,
    priority: str,
    custodian: str | None,
    custodian_folders: bool,
    dedup: str,
    unit: str,
    deterministic: bool,
    dry_run: bool,
) -> None:
    """Queue files and folders for the workers; print the job id."""
    settings = commands.load_settings()
    task_spec = commands.task_from_options(settings, task, labels, schema, prompt, case)
    if dry_run:
        _print_dry_run(settings, paths)
        return
    engine, session_factory = commands.open_database(settings)
    options = _run_options(priority, deterministic, custodian, custodian_folders, dedup, unit)
    submission = _ingest_with_progress(
        settings, session_factory, paths, task_spec, name, "celery", options
    )
    try:
        commands.publish_recorded(
            settings,
            session_factory,
            submission.item_run_ids,
            f"job {submission.job_id}",
            submission.job_id,
        )
    finally:
        engine.dispose()
    console.print(
        f"queued {submission.item_count} items ({submission.file_count} files, "
        f"{len(submission.duplicate_paths)} duplicates) as job {submission.job_id}"
    )
    _print_dicom_index(submission)
    click.echo(submission.job_id)


# --- status and results -------------------------------------------------------


def _status_renderable(status: status_module.RunStatus) -> Group:
    progress = Progress(
        TextColumn(f"job {status.job_id} run {status.run_number}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(status.run_state),
    )
    progress.add_task("", total=status.item_count, completed=status.finished_count)
    counts = "  ".join(f"{state}: {count}" for state, count in status.counts.items())
    parts: list[Any] = [
        f"[bold]{status.job_name}[/] — task {status.task_name}, model {status.model_name}, "
        f"{status.file_count} files / {status.item_count} items",
        progress,
        counts,
    ]
    if status.failures_by_code:
        failures = Table("error code", "items", title="failures by code", title_justify="left")
        for code, count in status.failures_by_code.items():
            failures.add_row(code, str(count))
        parts.append(failures)
    return Group(*parts)


@cli.command()
@click.argument("job_id", required=False, type=int)
@click.option("--run", "run_number", type=int, help="Run number (default: the latest).")
@click.option("--watch", is_flag=True, help="Refresh until every item is finished.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes.")
def status(job_id: int | None, run_number: int | None, watch: bool, interval: float) -> None:
    """Show a job's progress: counts by state and failures grouped by code."""
    settings = commands.load_settings()
    engine, session_factory = commands.open_database(settings)

    def read() -> status_module.RunStatus:
        with session_factory() as session:
            resolved = status_module.resolve_job_id(session, job_id)
            return status_module.run_status(session, resolved, run_number)

    current = read()
    out = Console()
    if watch:
        with Live(_status_renderable(current), console=out, refresh_per_second=4) as live:
            while not current.is_finished:
                time.sleep(interval)
                current = read()
                live.update(_status_renderable(current))
    else:
        out.print(_status_renderable(current))
    engine.dispose()
    if current.is_finished:
        sys.exit(EXIT_ITEMS_FAILED if current.problem_count else EXIT_OK)


def _print_results(
    session_factory: sessionmaker[Session],
    job_id: int | None,
    run_number: int | None,
    output_format: str,
    output: Path | None,
) -> int:
    with session_factory() as session:
        resolved = status_module.resolve_job_id(session, job_id)
        run_row = status_module.resolve_run(session, resolved, run_number)
        run_status = status_module.run_status(session, resolved, run_row.number)
        rows = results_module.result_rows(session, run_row)
        if output is not None:
            with output.open("w", encoding="utf-8", newline="") as handle:
                count = _write_rows(rows, output_format, handle)
            console.print(f"wrote {count} rows to {output}")
        else:
            _write_rows(rows, output_format, sys.stdout)
    if output_format == "table" or output is not None:
        console.print(_status_renderable(run_status))
    if not run_status.is_finished:
        return EXIT_OK
    return EXIT_ITEMS_FAILED if run_status.problem_count else EXIT_OK


def _write_rows(rows: Iterator[dict[str, Any]], output_format: str, out: TextIO) -> int:
    if output_format == "jsonl":
        return results_module.write_jsonl(rows, out)
    if output_format == "csv":
        return results_module.write_csv(rows, out)
    table = Table("path", "state", "result or error", show_lines=False)
    count = 0
    for row in rows:
        if row["state"] == "done":
            detail = results_module.result_preview(row["result"])
        else:
            detail = f"[red]{row['error_code'] or ''}[/] {row['error_message'] or ''}".strip()
        path = Path(row["path"])
        shown = f"{path.parent.name}/{path.name}" if path.parent.name else path.name
        if row["duplicate"]:
            shown += " [dim](duplicate)[/]"
        table.add_row(shown, row["state"], detail)
        count += 1
    Console(file=out, width=max(120, Console().width)).print(table)
    return count


@cli.command()
@click.argument("job_id", required=False, type=int)
@click.option("--run", "run_number", type=int, help="Run number (default: the latest).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["jsonl", "csv", "table"]),
    default="jsonl",
    show_default=True,
)
@commands.output_option
def results(
    job_id: int | None, run_number: int | None, output_format: str, output: Path | None
) -> None:
    """Print or write a job's results (default: the most recent job)."""
    settings = commands.load_settings()
    engine, session_factory = commands.open_database(settings)
    exit_code = _print_results(session_factory, job_id, run_number, output_format, output)
    engine.dispose()
    sys.exit(exit_code)


@cli.command(name="jobs")
@click.option("--limit", default=20, show_default=True)
def list_jobs(limit: int) -> None:
    """List recent jobs."""
    settings = commands.load_settings()
    engine, session_factory = commands.open_database(settings)
    table = Table("job", "name", "created (UTC)", "by", "files", "items", "runs")
    with session_factory() as session:
        for job in session.scalars(select(Job).order_by(Job.id.desc()).limit(limit)):
            runs = session.scalars(select(Run).where(Run.job_id == job.id)).all()
            table.add_row(
                str(job.id),
                job.name,
                job.created_at.strftime("%Y-%m-%d %H:%M"),
                job.submitted_by,
                str(job.file_count),
                str(job.item_count),
                ", ".join(f"{r.number}:{r.state.value}" for r in runs),
            )
    Console().print(table)
    engine.dispose()


# --- recovery -----------------------------------------------------------------


@cli.command()
@click.argument("job_id", required=False, type=int)
def resume(job_id: int | None) -> None:
    """Re-queue a job's stalled items (default: every unfinished job).

    Stalled: pending, queued (its message may have been lost: a Redis restart
    or flush) or running under a lease that expired or whose worker is gone.
    Safe to run at any time: an item already being processed is left alone.
    """
    from worker import recovery

    settings = commands.load_settings()
    engine, session_factory = commands.open_database(settings)
    if job_id is not None:
        commands.require_job(session_factory, job_id)
    try:
        report = recovery.resume(
            commands.dispatcher(settings), session_factory, submitter_identity(), job_id
        )
    except (errors.SieveError, DBAPIError):
        raise
    except Exception as exc:  # the broker is down
        raise errors.BrokerUnavailableError(
            f"could not re-queue: {type(exc).__name__}: {exc}; nothing was lost, try again"
        ) from exc
    finally:
        engine.dispose()
    console.print(
        f"re-queued {report.published} item(s): {len(report.pending)} pending, "
        f"{len(report.queued)} queued, {len(report.expired_leases)} with dead leases"
    )
    click.echo(report.published)


@cli.command()
@click.argument("job_id", type=int)
def cancel(job_id: int) -> None:
    """Cancel a job: unfinished items become cancelled; finished results are kept."""
    from worker import recovery

    settings = commands.load_settings()
    engine, session_factory = commands.open_database(settings)
    commands.require_job(session_factory, job_id)
    report = recovery.cancel_job(session_factory, job_id, submitter_identity())
    engine.dispose()
    if not report.runs_cancelled:
        console.print(f"job {job_id} has no unfinished run; nothing to cancel")
        return
    console.print(
        f"cancelled job {job_id}: {report.items_cancelled} item(s) will not be processed "
        f"({report.items_running} were running; their workers abandon them)"
    )


# --- worker ---------------------------------------------------------------------


@cli.command()
@click.option("--concurrency", "-c", type=int, help="Worker processes, one model each.")
@click.option(
    "--sequences",
    type=click.IntRange(1, 64),
    help="Items one model process serves at once, decoded together "
    "(model.parallel_sequences; one process then).",
)
@click.option("--loglevel", default="INFO", show_default=True)
def worker(concurrency: int | None, sequences: int | None, loglevel: str) -> None:
    """Run a Celery worker; each process loads the model once at start."""
    from worker import capacity
    from worker.celery_app import create_celery_app
    from worker.tasks import register_worker_tasks, runs_lanes

    settings = commands.load_settings()
    if sequences is not None:
        settings = settings.model_copy(
            update={"model": settings.model.model_copy(update={"parallel_sequences": sequences})}
        )
    logging.getLogger().setLevel(loglevel.upper())
    processes = concurrency or settings.worker.concurrency
    if runs_lanes(settings) and processes > 1:
        raise click.UsageError(
            "parallel sequences run in one model process (its threads share the model); "
            "start one worker with --concurrency 1, or set model.parallel_sequences to 1"
        )
    if runs_lanes(settings) and settings.model.constraint_engine != "llguidance":
        # Checked here: a model that fails to load in Celery's worker_init is only logged.
        raise click.UsageError("parallel sequences need SIEVE_MODEL__CONSTRAINT_ENGINE=llguidance")
    settings, threads = capacity.size_worker(settings, processes)
    if threads.warning:
        logger.warning(threads.warning)
    lanes = settings.model.parallel_sequences
    logger.info(
        "%d model process(es), %d thread(s) each, on %d core(s); %d item(s) in flight per process",
        processes,
        threads.threads,
        threads.cores,
        lanes,
    )
    app = create_celery_app(settings)
    register_worker_tasks(app, settings)
    # Prefork: a model per child. Lanes: Celery's thread pool in this process,
    # a thread per item in flight, all on the one model.
    pool, slots = ("threads", lanes) if runs_lanes(settings) else ("prefork", processes)
    app.worker_main(
        [
            "worker",
            "--pool",
            pool,
            "--concurrency",
            str(slots),
            "--queues",
            settings.worker.queue,
            "--loglevel",
            loglevel,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--hostname",
            f"sieve@{os.uname().nodename}",
        ]
    )


# --- database -----------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema migrations."""


@db.command(name="upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Upgrade the schema (default: to the newest revision)."""
    url = commands.load_settings().resolved_database_url
    try:
        migrate.upgrade(url, revision)
    except Exception as exc:
        raise errors.DatabaseUnavailableError(
            f"upgrade of {commands.safe_url(url)} failed: {exc}"
        ) from exc
    console.print(f"{commands.safe_url(url)} is at revision {migrate.current_revision(url)}")


@db.command(name="downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Downgrade the schema to REVISION (e.g. -1, or base)."""
    url = commands.load_settings().resolved_database_url
    migrate.downgrade(url, revision)
    console.print(f"{commands.safe_url(url)} is at revision {migrate.current_revision(url)}")


@db.command(name="current")
def db_current() -> None:
    """Print the schema revision of the database."""
    url = commands.load_settings().resolved_database_url
    click.echo(migrate.current_revision(url) or "empty")


def _attach_optional_groups() -> None:
    from jobs.admin_cli import ADMIN_COMMANDS
    from jobs.audit_cli import audit_group
    from jobs.imaging_cli import deid_group, pacs_group
    from jobs.models_cli import models
    from jobs.production_cli import export, production_group, review_group
    from jobs.users_cli import CONSOLE_COMMANDS

    cli.add_command(models)
    cli.add_command(audit_group)
    cli.add_command(export)
    cli.add_command(production_group)
    cli.add_command(review_group)
    cli.add_command(deid_group)
    cli.add_command(pacs_group)
    for command in (*ADMIN_COMMANDS, *CONSOLE_COMMANDS):
        cli.add_command(command)


_attach_optional_groups()


def main() -> None:
    """Console-script entry point (errors are mapped to exit codes by the group itself)."""
    cli(standalone_mode=True)
