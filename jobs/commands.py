"""What every ``sieve`` command needs before it does its work, and how errors end it.

Shared by the command groups (``jobs.cli``, ``jobs.audit_cli``,
``jobs.models_cli``), so none imports another's private helpers. Commands
raise Sieve errors; :func:`exit_code_for` is the one place that turns them
into exit codes, and ``jobs.cli.main`` the one place that prints them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from db import migrate
from db.session import make_engine, make_session_factory
from jobs import status as status_module
from jobs.settings import Settings, get_settings
from worker import errors
from worker.celery_app import create_celery_app
from worker.dispatch import Dispatcher
from worker.task_specs import TaskSpec, build_task

EXIT_OK = 0
EXIT_ITEMS_FAILED = 1  # the run completed, but some items failed or were unsupported
EXIT_USAGE = 2  # a usage error, or the command could not start


# By error class, most specific first wins (looked up along the class's MRO).
# Every error that stops a command before it finishes is a usage error or an
# environment the user must fix (no such job, bad configuration, the database
# or broker away). Exit 1 is not an error but an outcome (some items failed),
# chosen by the commands that report runs.
_EXIT_CODES: dict[type[errors.SieveError], int] = {
    errors.SieveError: EXIT_USAGE,
}


def exit_code_for(exc: errors.SieveError) -> int:
    """The exit code a command ends with when ``exc`` stops it."""
    for cls in type(exc).__mro__:
        if cls in _EXIT_CODES:
            return _EXIT_CODES[cls]
    return EXIT_USAGE


class SieveGroup(click.Group):
    """The root command group: the one place a Sieve error becomes a message and an exit code.

    A command raises the error that stopped it; this prints its message on
    stderr without a traceback and exits with :func:`exit_code_for`. Database
    errors that escaped a command are mapped first. Anything else is a bug and
    keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with errors.database_errors_mapped():
                return super().invoke(ctx)
        except errors.SieveError as exc:
            _fail(ctx, exc)


def _fail(ctx: click.Context, exc: errors.SieveError) -> NoReturn:
    Console(stderr=True, soft_wrap=True, highlight=False).print(f"[red]error:[/] {exc.message}")
    ctx.exit(exit_code_for(exc))


# ``--output FILE`` for every command that writes a report or results.
output_option = click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file instead of standard output.",
)


def load_settings() -> Settings:
    """The process's settings; invalid ``SIEVE_*`` values are a configuration error."""
    try:
        return get_settings()
    except ValueError as exc:  # pydantic validation of SIEVE_* variables
        raise errors.ConfigurationError(f"invalid configuration: {exc}") from exc


def open_database(settings: Settings) -> tuple[Engine, sessionmaker[Session]]:
    """Engine and sessions for the configured database, checked to be migrated.

    The embedded SQLite default is migrated automatically (a first ``sieve run``
    needs no set-up); a server database must be upgraded explicitly with
    ``sieve db upgrade``, because that is an operator's decision.
    """
    url = settings.resolved_database_url
    is_embedded = settings.database_url is None
    try:
        if is_embedded:
            migrate.upgrade(url)
        elif not migrate.is_up_to_date(url):
            raise errors.ConfigurationError(
                "the database schema is not up to date: run `sieve db upgrade` first"
            )
        engine = make_engine(url)
    except errors.SieveError:
        raise
    except Exception as exc:
        raise errors.DatabaseUnavailableError(
            f"cannot open the database {safe_url(url)}: {exc}"
        ) from exc
    return engine, make_session_factory(engine)


def require_job(session_factory: sessionmaker[Session], job_id: int) -> None:
    """Raise :class:`~worker.errors.NotFoundError` unless job ``job_id`` exists."""
    with session_factory() as session:
        status_module.resolve_job_id(session, job_id)


@contextlib.contextmanager
def job_session(settings: Settings, job_id: int) -> Iterator[Session]:
    """A session on the database, for a job that must exist; the engine closed after."""
    engine, session_factory = open_database(settings)
    try:
        require_job(session_factory, job_id)
        with session_factory() as session:
            yield session
    finally:
        engine.dispose()


@contextlib.contextmanager
def transaction(settings: Settings) -> Iterator[Session]:
    """A session in one transaction on the database (committed unless it raises), engine closed after."""
    engine, session_factory = open_database(settings)
    try:
        with session_factory.begin() as session:
            yield session
    finally:
        engine.dispose()


def dispatcher(settings: Settings) -> Dispatcher:
    """The broker publisher for this command: one Celery app, built once."""
    return Dispatcher(create_celery_app(settings), settings.worker.queue)


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def task_from_options(
    settings: Settings,
    task: str,
    labels: str | None,
    schema: Path | None,
    prompt: str | None,
    case: Path | None = None,
) -> TaskSpec:
    """The task named on the command line, bound to its options."""
    options: dict[str, Any] = {}
    if case is not None:
        if task != "responsiveness":
            raise errors.UsageError("--case goes with --task responsiveness")
        try:
            options["case"] = case.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise errors.UsageError(f"cannot read --case {case}: {exc}") from exc
    if labels:
        options["labels"] = [label.strip() for label in labels.split(",") if label.strip()]
    if schema is not None:
        try:
            options["schema"] = json.loads(schema.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise errors.UsageError(f"cannot read --schema {schema}: {exc}") from exc
    if prompt:
        options["prompt"] = prompt
    if prompt and task != "prompt":
        raise errors.UsageError("--prompt goes with --task prompt")
    return build_task(task, options, settings.model.max_text_chars)


def publish_recorded(
    settings: Settings,
    session_factory: sessionmaker[Session],
    item_run_ids: list[int],
    what: str,
    job_id: int,
    actor: str | None = None,
) -> None:
    """Hand committed item runs to the workers; a broker that is down leaves them pending.

    ``what`` names the recorded thing for the message ("job 3", "run 2 of job 3");
    ``actor`` who asked (default: the OS user).
    """
    from jobs.submit import submitter_identity

    try:
        dispatcher(settings).publish(session_factory, item_run_ids, actor or submitter_identity())
    except Exception as exc:  # broker down: everything is recorded, items stay pending
        raise errors.BrokerUnavailableError(
            f"{what} is recorded but could not be queued ({type(exc).__name__}: {exc}); "
            f"its items stay pending (sieve resume {job_id} queues them)"
        ) from exc


def with_options(
    function: Callable[..., Any], options: list[Callable[..., Any]]
) -> Callable[..., Any]:
    """``function`` decorated with click ``options``, the first listed shown first."""
    for option in reversed(options):
        function = option(function)
    return function
