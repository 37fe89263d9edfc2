"""The admin's commands: re-run from the database, list and compare runs, reconcile, pause.

``sieve rerun JOB`` makes a new run of a job from what the database and the
content store hold (no file is read again from its old path); ``sieve runs``
lists every run; ``sieve diff`` compares two; ``sieve report`` accounts for
every submitted path; ``sieve pause`` / ``unpause`` hold a job's items back
from the workers.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from jobs import commands, estimates, item_filter, reconciliation, reruns, run_diff
from jobs import status as status_module
from jobs.settings import Settings
from jobs.submit import submitter_identity
from worker import errors
from worker.config import ModelSettings
from worker.model import file_sha256, resolve_model_path

console = Console(stderr=True)


def _rerun_model(
    settings: Settings, base_settings: dict[str, Any], path: Path | None
) -> ModelSettings:
    """The model a re-run uses: ``--model PATH``, else the one its base run recorded."""
    if path is not None:
        return settings.model.model_copy(update={"path": path, "name": None, "mmproj_path": None})
    return ModelSettings.model_validate(base_settings)


def _current_model_sha256(settings: Settings, model: ModelSettings) -> str:
    try:
        return file_sha256(resolve_model_path(model), settings.data_dir / "model-hashes.json")
    except errors.ConfigurationError as exc:
        raise errors.UsageError(
            f"'model_sha256 != current' needs the model file on this machine: {exc.message}"
        ) from exc


def _rerun_estimate(
    session_factory: sessionmaker[Session], selection: reruns.Selection, model: ModelSettings
) -> estimates.Estimate:
    from worker.model import configured_model

    with session_factory() as session:
        facts = estimates.stored_item_facts(session, selection.item_ids)
        rates = estimates.measured_rates(session, configured_model(model)[0])
    return estimates.estimate(facts, rates)


@click.command()
@click.argument("job_id", type=int)
@click.option("--run", "run_number", type=int, help="The run to re-run (default: the latest).")
@click.option("--failed-only", is_flag=True, help="Only items that failed in that run.")
@click.option("--where", "where", help="A filter: state, error_code, media_type, path, …")
@click.option("--task", help="A different task (default: the run's).")
@click.option("--labels", help="classify: comma-separated labels")
@click.option("--schema", type=click.Path(path_type=Path, dir_okay=False), help="extract: schema")
@click.option("--prompt", help="prompt: the free-text instruction")
@click.option(
    "--case",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="responsiveness: the case and its requests",
)
@click.option("--model", "model_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--deterministic", is_flag=True, help="Greedy, fixed seed, one sequence, no reuse.")
@click.option("--priority", type=click.Choice(reruns.PRIORITIES), default="normal")
@click.option("--in-process", is_flag=True, help="Run here even when workers serve the database.")
@click.option(
    "--dry-run", is_flag=True, help="Show what would run and the estimate; record nothing."
)
def rerun(
    job_id: int,
    run_number: int | None,
    failed_only: bool,
    where: str | None,
    task: str | None,
    labels: str | None,
    schema: Path | None,
    prompt: str | None,
    case: Path | None,
    model_path: Path | None,
    deterministic: bool,
    priority: str,
    in_process: bool,
    dry_run: bool,
) -> None:
    """Re-run a job from the database: all items, failed ones, or a filter; print the run id."""
    settings = commands.load_settings()
    parsed_filter = item_filter.parse(where) if where is not None else None
    engine, session_factory = commands.open_database(settings)
    try:
        with session_factory() as session:
            base = status_module.resolve_run(session, job_id, run_number)
            model = _rerun_model(settings, base.model_settings, model_path)
        new_task = None
        if task is not None or labels or schema or prompt or case:
            # --labels alone re-words the run's own task (classify), not a default one.
            name = task or base.task_name
            new_task = commands.task_from_options(settings, name, labels, schema, prompt, case)
        current = (
            _current_model_sha256(settings, model)
            if parsed_filter and parsed_filter.uses_current_model
            else None
        )
        request = reruns.RerunRequest(
            job_id=job_id,
            base_run_number=base.number,
            failed_only=failed_only,
            where=parsed_filter,
            task=new_task,
            model=model if model_path is not None else None,
            deterministic=deterministic,
            priority=priority,
        )
        with session_factory() as session:
            selection = reruns.select_items(session, request, current)
        forecast = _rerun_estimate(session_factory, selection, model)
        console.print(
            f"job {job_id}: {len(selection.item_ids)} of {selection.considered} item(s) "
            f"selected from run {selection.base_run_number}"
        )
        for line in forecast.describe():
            click.echo(f"  {line}", err=True)
        if dry_run:
            console.print("dry run: nothing recorded")
            click.echo(len(selection.item_ids))
            return
        here = in_process or settings.database_url is None
        made = reruns.record_rerun(
            session_factory,
            request,
            actor=submitter_identity(),
            executor="in_process" if here else "celery",
            current_model_sha256=current,
            estimate=forecast.as_json(),
        )
        problems = 0
        if here:
            problems = _run_here(settings, session_factory, model, made)
        else:
            _publish(settings, session_factory, made)
        click.echo(made.run_id)
    finally:
        engine.dispose()
    # As ``sieve run``: a run that completed here with failed items exits 1.
    sys.exit(commands.EXIT_ITEMS_FAILED if problems else commands.EXIT_OK)


def _run_here(
    settings: Settings,
    session_factory: sessionmaker[Session],
    model: ModelSettings,
    made: reruns.Rerun,
) -> int:
    """Process the re-run in this process; return how many items did not end done."""
    from jobs.embedded import build_in_process_context, run_item_runs

    here = settings.model_copy(update={"model": model})
    with console.status("loading the model…"):
        context = build_in_process_context(here, session_factory)
    outcomes = run_item_runs(context, made.item_run_ids)
    done = sum(1 for outcome in outcomes if outcome.state and outcome.state.value == "done")
    console.print(
        f"run {made.number} (id {made.run_id}) of job {made.job_id}: "
        f"{done} of {len(outcomes)} item(s) done"
    )
    return len(outcomes) - done


def _publish(
    settings: Settings, session_factory: sessionmaker[Session], made: reruns.Rerun
) -> None:
    commands.publish_recorded(
        settings,
        session_factory,
        made.item_run_ids,
        f"run {made.number} of job {made.job_id}",
        made.job_id,
    )
    console.print(
        f"queued {len(made.item_run_ids)} item(s) as run {made.number} (id {made.run_id}) "
        f"of job {made.job_id}"
    )


# --- runs -------------------------------------------------------------------------


def _run_line(summary: status_module.RunSummary) -> str:
    counts = " ".join(f"{state}={count}" for state, count in sorted(summary.counts.items()))
    hashes = ",".join(sha[:12] for sha in summary.model_sha256s) or "-"
    wall = f"{summary.wall_seconds:.1f}s" if summary.wall_seconds is not None else "-"
    estimated = (summary.estimate or {}).get("seconds")
    versus = f" est={estimated:.1f}s" if isinstance(estimated, int | float) else ""
    origin = f" rerun-of=#{summary.parent_number}" if summary.parent_number else ""
    where = (summary.selection or {}).get("where")
    chosen = ""
    if summary.selection:
        chosen = f" selected={summary.selection.get('selected')}"
        chosen += " failed-only" if summary.selection.get("failed_only") else ""
        chosen += f" where={json.dumps(where)}" if where else ""
    return (
        f"{summary.run_id}\t#{summary.number}{origin} {summary.state} {summary.created_at} "
        f"by={summary.created_by} task={summary.task.replace(' ', '@')} "
        f"prompt={summary.prompt_hash[:12]} model={summary.model_name} sha={hashes} {counts} "
        f"wall={wall}{versus} tokens={summary.prompt_tokens + summary.completion_tokens} "
        f"priority={summary.priority}{' deterministic' if summary.deterministic else ''}{chosen}"
    )


@click.command()
@click.argument("job_id", type=int)
@click.option("--format", "output_format", type=click.Choice(["lines", "jsonl"]), default="lines")
def runs(job_id: int, output_format: str) -> None:
    """List a job's runs, one line each, starting with the run id (for sieve diff)."""
    engine, session_factory = commands.open_database(commands.load_settings())
    with session_factory() as session:
        summaries = status_module.run_summaries(session, job_id)
    engine.dispose()
    for summary in summaries:
        if output_format == "jsonl":
            click.echo(json.dumps(summary.__dict__, default=str, sort_keys=True))
        else:
            click.echo(_run_line(summary))


# --- diff -------------------------------------------------------------------------


@click.command()
@click.argument("run_a", type=int)
@click.argument("run_b", type=int)
@click.option("--format", "output_format", type=click.Choice(["table", "jsonl"]), default="table")
@click.option("--all", "show_all", is_flag=True, help="List unchanged items too.")
def diff(run_a: int, run_b: int, output_format: str, show_all: bool) -> None:
    """Compare two runs (ids from sieve runs) item by item; print a summary count."""
    engine, session_factory = commands.open_database(commands.load_settings())
    with session_factory() as session:
        diffs = list(run_diff.diff_runs(session, run_a, run_b))
    engine.dispose()
    shown = [d for d in diffs if show_all or d.status != "unchanged"]
    if output_format == "jsonl":
        for entry in diffs:
            click.echo(json.dumps(entry.as_row(), default=str, sort_keys=True))
    else:
        table = Table("item", "path", "status", "changed fields")
        for entry in shown:
            fields = "; ".join(
                f"{name}: {_short(a)} → {_short(b)}" for name, (a, b) in entry.changes.items()
            )
            table.add_row(str(entry.item_id), entry.path, entry.status, fields)
        Console(width=max(120, Console().width)).print(table)
    counts = run_diff.summarise(diffs)
    click.echo(" ".join(f"{status}={count}" for status, count in counts.items()), err=True)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- report -----------------------------------------------------------------------


@click.command()
@click.argument("job_id", type=int)
@click.option("--run", "run_number", type=int, help="Run number (default: the latest).")
@click.option(
    "--format", "output_format", type=click.Choice(["table", "csv", "jsonl"]), default="table"
)
def report(job_id: int, run_number: int | None, output_format: str) -> None:
    """Account for every submitted path once; exit 1 if the counts do not add up."""
    engine, session_factory = commands.open_database(commands.load_settings())
    with session_factory() as session:
        built = reconciliation.build_report(session, job_id, run_number)
    engine.dispose()
    rows = [row.as_row() for row in built.rows + built.found + built.members]
    writers: dict[str, Callable[[list[dict[str, Any]]], None]] = {
        "jsonl": _jsonl,
        "csv": _csv,
        "table": _report_table,
    }
    writers[output_format](rows)
    # Plain lines, never wrapped: scripts read the check line.
    counts = " ".join(f"{name}={count}" for name, count in built.counts().items())
    click.echo(f"job {job_id} run {built.run_number}: {counts}", err=True)
    if built.error_codes():
        codes = " ".join(f"{code}={n}" for code, n in built.error_codes().items())
        click.echo(f"by error code: {codes}", err=True)
    if built.quotes:
        click.echo(built.quotes_line(), err=True)
    click.echo(built.check_line(), err=True)
    if built.found:
        click.echo(built.found_line(), err=True)
    sys.exit(commands.EXIT_OK if built.balanced else commands.EXIT_ITEMS_FAILED)


def _jsonl(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row, sort_keys=True))


def _csv(rows: list[dict[str, Any]]) -> None:
    writer = csv.DictWriter(sys.stdout, fieldnames=list(reconciliation.COLUMNS))
    writer.writeheader()
    writer.writerows(rows)


def _report_table(rows: list[dict[str, Any]]) -> None:
    table = Table("path", "category", "item", "error code", "detail", "found in")
    for row in rows:
        found_in = row["found_in_item_id"]
        table.add_row(
            row["path"],
            row["category"],
            str(row["item_id"]),
            row["error_code"] or "",
            row["detail"],
            "" if found_in is None else str(found_in),
        )
    Console(width=max(120, Console().width)).print(table)


# --- pause ------------------------------------------------------------------------


@click.command()
@click.argument("job_id", type=int)
def pause(job_id: int) -> None:
    """Stop workers from starting a job's items (items in progress finish)."""
    from worker import recovery

    engine, session_factory = commands.open_database(commands.load_settings())
    changed = recovery.set_job_paused(session_factory, job_id, submitter_identity(), True)
    engine.dispose()
    console.print(f"job {job_id} {'paused' if changed else 'was already paused'}")


@click.command()
@click.argument("job_id", type=int)
def unpause(job_id: int) -> None:
    """Let workers take a paused job's items again, and re-queue them."""
    from worker import recovery

    settings = commands.load_settings()
    engine, session_factory = commands.open_database(settings)
    try:
        changed = recovery.set_job_paused(session_factory, job_id, submitter_identity(), False)
        if not changed:
            console.print(f"job {job_id} was not paused")
            return
        if settings.database_url is None:
            console.print(f"job {job_id} unpaused")
            return
        try:
            published = recovery.resume(
                commands.dispatcher(settings), session_factory, submitter_identity(), job_id
            ).published
        except errors.SieveError:
            raise
        except Exception as exc:  # the broker is down
            raise errors.BrokerUnavailableError(
                f"job {job_id} is unpaused but its items could not be re-queued "
                f"({type(exc).__name__}: {exc}); run sieve resume {job_id}"
            ) from exc
        console.print(f"job {job_id} unpaused; re-queued {published} item(s)")
    finally:
        engine.dispose()


ADMIN_COMMANDS = (rerun, runs, diff, report, pause, unpause)
