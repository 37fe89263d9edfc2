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

from typing import ClassVar


class SieveError(Exception):
    """Sieve failed on this item."""

    code: ClassVar[str] = "internal"
    retryable: ClassVar[bool] = False
    item_state: ClassVar[str] = "failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        super().__init__(self.message)


class ConfigurationError(SieveError):
    """Sieve is not configured correctly."""

    code = "configuration"


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
    """The database could not be reached."""

    code = "database_unavailable"


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
