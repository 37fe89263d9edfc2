"""What every ``sieve`` command needs before it does its work, and how errors end it.

Shared by the command groups (``jobs.cli``, ``jobs.audit_cli``,
``jobs.models_cli``), so none imports another's private helpers. Commands
raise Sieve errors; :func:`exit_code_for` is the one place that turns them
into exit codes, and ``jobs.cli.main`` the one place that prints them.
"""

from __future__ import annotations

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


def dispatcher(settings: Settings) -> Dispatcher:
    """The broker publisher for this command: one Celery app, built once."""
    return Dispatcher(create_celery_app(settings), settings.worker.queue)


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)
