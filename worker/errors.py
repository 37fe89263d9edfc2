"""Sieve's error tree.

Every error an item can end with is a subclass of :class:`SieveError`. Its
``code`` is stable: it is stored on the item and shown in reports, so never
rename one. ``retryable`` says whether trying again later may succeed (a tool
timed out) or never will (the file is corrupt). ``item_state`` is the state an
item ends in when this error stops it. The class docstring is the default
message, so a new error is three lines.

Third-party errors (PyMuPDF, llama-cpp, ffmpeg) are mapped to these at the
boundary that calls the library. Anything else is a bug in Sieve and is
recorded as ``internal`` with its traceback, never re-labelled as bad input.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from typing import ClassVar


class SieveError(Exception):
    """Sieve failed on this item."""

    # Never stored: every error raised is a subclass with its own code
    # (InternalError's "internal" for bugs).
    code: ClassVar[str] = "error"
    retryable: ClassVar[bool] = False
    item_state: ClassVar[str] = "failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        super().__init__(self.message)


class InternalError(SieveError):
    """An internal error in Sieve or a library it calls (a bug: the traceback is kept)."""

    code = "internal"

    def __init__(self, message: str | None = None, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail  # the traceback, stored in item_runs.error_detail


class ConfigurationError(SieveError):
    """Sieve is not configured correctly."""

    code = "configuration"


class NotFoundError(SieveError):
    """The job or run asked for does not exist."""

    code = "not_found"


class UsageError(SieveError):
    """The command was called with options that do not go together."""

    code = "usage"


# --- permanent input errors: the file itself is the problem -----------------


class InputError(SieveError):
    """The input file cannot be processed."""

    code = "bad_input"


class UnsupportedTypeError(InputError):
    """No extractor handles this type of file."""

    code = "unsupported_type"
    item_state = "unsupported"


class EmptyFileError(InputError):
    """The file is empty (zero bytes)."""

    code = "empty_file"


class CorruptFileError(InputError):
    """The file is damaged and cannot be read."""

    code = "corrupt_file"


class EncryptedFileError(InputError):
    """The file is encrypted and no password was given."""

    code = "encrypted"


class LimitExceededError(InputError):
    """The file exceeds a configured limit."""

    code = "limit_exceeded"


class UnsafeArchiveError(InputError):
    """The archive's members would be written outside it (absolute paths, "..", links)."""

    code = "unsafe_archive"


class MissingStreamError(InputError):
    """The file has no stream of the kind its type promises (no sound in an audio file)."""

    # Distinct from corrupt_file: the file reads fine, it just holds nothing to extract.
    code = "missing_stream"


class ExtractionTimeoutError(InputError):
    """Reading the file took longer than the extraction time limit."""

    # Permanent: a file that made the parser spin once will do it again.
    code = "timeout"


class ExtractionOutOfMemoryError(InputError):
    """Reading the file needed more memory than the extraction memory limit."""

    code = "oom"


class ExtractionCrashedError(InputError):
    """The parser crashed on this file (the worker itself is unharmed)."""

    code = "crashed"


class SeriesAssemblyError(InputError):
    """The series' images cannot be put in spatial order (missing or contradictory geometry)."""

    code = "series_unassemblable"


class SourceMissingError(InputError):
    """The stored original of this item is missing from the content store."""

    code = "source_missing"


# --- transient errors: trying again later may succeed -----------------------


class TransientError(SieveError):
    """A temporary failure; the item may succeed on another attempt."""

    code = "transient"
    retryable = True


class ToolTimeoutError(TransientError):
    """An external tool did not finish in time."""

    code = "tool_timeout"


class DatabaseUnavailableError(TransientError):
    """The database could not be reached, restarted, or asked for the transaction again."""

    code = "database_unavailable"


class BrokerUnavailableError(TransientError):
    """The message broker (Redis) could not be reached; nothing was lost, try again."""

    code = "broker_unavailable"


class PacsUnavailableError(TransientError):
    """A PACS did not answer (refused, unreachable, timed out, or busy); ask again later."""

    code = "pacs_unavailable"


class TimeLimitError(TransientError):
    """The item ran past its time limit (the worker's soft time limit)."""

    code = "time_limit"


# --- what ends an item for good once the transient retries are spent ---------


class RetriesExhaustedError(SieveError):
    """The item failed transiently on every attempt its retry budget allows."""

    code = "retries_exhausted"


class DatabaseRejectedError(SieveError):
    """The database refused to store this item's data (a data or integrity error)."""

    # Permanent: the same data would be refused again, so retrying would loop.
    code = "database_rejected"


# --- not item outcomes: how a worker's hold on an item ends ------------------


class LeaseLostError(SieveError):
    """Another worker holds this item now, or its run was cancelled: abandon it quietly."""

    # Never stored on an item: the item belongs to someone else now.
    code = "lease_lost"


# --- tools and the model ----------------------------------------------------


class ToolError(SieveError):
    """An external tool failed."""

    code = "tool_failed"


class ModelError(SieveError):
    """The model failed to produce a result."""

    code = "model_failed"


class ModelLoadError(ModelError):
    """The model file could not be loaded."""

    code = "model_load_failed"


class ModelOutputInvalidError(ModelError):
    """The model's output did not match the task's schema."""

    code = "model_output_invalid"


class ModelCapabilityError(ModelError):
    """The loaded model lacks a capability this item needs."""

    code = "model_capability"
    item_state = "unsupported"


class NothingToAnalyseError(InputError):
    """The file holds no text or image the model can use."""

    code = "no_content"
    item_state = "unsupported"


# --- fetching models (``sieve models pull``, never an item) -----------------


class ModelDownloadError(SieveError):
    """A model file could not be downloaded or did not match its expected hash."""

    code = "model_download_failed"


# --- people at the console and the API (``sieve serve``, never an item) ------


class AccessError(SieveError):
    """Access was refused."""

    code = "access_denied"


class AuthenticationError(AccessError):
    """Sign in first: no valid session or bearer token came with the request."""

    code = "unauthenticated"


class ForbiddenError(AccessError):
    """Your role or your grants do not allow this."""

    code = "forbidden"


class CsrfError(ForbiddenError):
    """The form did not carry this session's CSRF token; reload the page and try again."""

    code = "csrf_failed"


class RateLimitedError(AccessError):
    """Too many failed sign-ins from this user and address; wait and try again."""

    code = "rate_limited"

    def __init__(self, message: str | None = None, retry_after_s: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s  # sent as Retry-After


def error_class_for(code: str) -> type[SieveError]:
    """The error class whose stored ``code`` is ``code`` (``SieveError`` if none).

    Used to re-raise, in the worker, an error that a sandboxed child reported by code.
    """
    pending: list[type[SieveError]] = [SieveError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls
        pending.extend(cls.__subclasses__())
    return SieveError


# PostgreSQL's "try the transaction again" and "server going away" states.
_TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004"}
)


def from_database_error(exc: Exception) -> SieveError:
    """The Sieve error for an exception raised by SQLAlchemy or its driver.

    Transient (:class:`DatabaseUnavailableError`, retried within the budget):
    the connection was lost or refused, the server is restarting, or it asked
    for the transaction to be tried again (serialization failure, deadlock).
    Permanent (:class:`DatabaseRejectedError`): the database refused the
    item's data (a data or integrity error); the same write would be refused
    again, so the item fails with a code instead of looping. Anything else is
    a bug in Sieve's SQL and is :class:`InternalError`.
    """
    from sqlalchemy import exc as sa_exc  # deferred: the sandbox child never needs it

    summary = f"{type(exc).__name__}: {getattr(exc, 'orig', None) or exc}".strip()
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    unavailable = DatabaseUnavailableError(f"the database cannot be used now: {summary}")
    if isinstance(exc, sa_exc.DBAPIError) and (
        exc.connection_invalidated or sqlstate in _TRANSIENT_SQLSTATES
    ):
        return unavailable
    if isinstance(exc, (sa_exc.DataError, sa_exc.IntegrityError)):
        return DatabaseRejectedError(f"the database refused this item's data: {summary}")
    transient_kinds = (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.DisconnectionError,
        sa_exc.TimeoutError,
    )
    if isinstance(exc, transient_kinds):
        return unavailable
    return InternalError(f"database error: {summary}")


@contextlib.contextmanager
def database_errors_mapped() -> Iterator[None]:
    """Turn any SQLAlchemy or driver error raised in the block into its Sieve error.

    The one boundary where database errors are classified (see
    :func:`from_database_error`); Sieve's own errors pass through unchanged.
    """
    from sqlalchemy import exc as sa_exc  # deferred: the sandbox child never needs it

    try:
        yield
    except sa_exc.SQLAlchemyError as exc:
        mapped = from_database_error(exc)
        if isinstance(mapped, InternalError):
            mapped.detail = traceback.format_exc()
        raise mapped from exc
