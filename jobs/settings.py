"""The one place Sieve reads configuration.

Every setting comes from ``SIEVE_*`` environment variables (nested groups use a
double underscore: ``SIEVE_MODEL__N_CTX=8192``) or from an optional TOML file
(``sieve.toml`` in the working directory, or the file named by ``SIEVE_CONFIG``).
Environment variables win over the file. Nothing else in the code base reads
``os.environ``: it asks :func:`get_settings`. The setting groups themselves
(model, worker, limits, media) are defined in :mod:`worker.config`, next to
the code that consumes them; :class:`Settings` composes them and adds what
only people's commands use (the hub ``sieve models pull`` downloads from).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from worker.config import WorkerConfig
from worker.imaging.deid_profile import RegionRule


def _default_data_dir() -> Path:
    """XDG data home, so a user's results survive a change of working directory."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "sieve"


class HubSettings(BaseModel):
    """Where ``sieve models pull`` downloads from; used by no other path."""

    url: str = "https://huggingface.co"
    token: SecretStr | None = None


class DestinationSettings(BaseModel):
    """A PACS that structured reports are sent to: DICOMweb STOW-RS or DIMSE C-STORE."""

    protocol: Literal["stow-rs", "c-store"]
    url: str | None = None  # stow-rs: the DICOMweb root, e.g. http://pacs:8042/dicom-web
    username: str | None = None  # stow-rs: HTTP basic authentication
    password: SecretStr | None = None
    host: str | None = None  # c-store: the storage SCP
    port: int = Field(default=104, ge=1, le=65535)
    called_ae: str = Field(default="ANY-SCP", max_length=16)
    calling_ae: str = Field(default="SIEVE", max_length=16)
    timeout_s: float = Field(default=30.0, gt=0)
    attempts: int = Field(default=3, ge=1, le=10)  # per object, on connection failures

    @model_validator(mode="after")
    def _addressed(self) -> DestinationSettings:
        if self.protocol == "stow-rs" and not self.url:
            raise ValueError("a stow-rs destination needs its url")
        if self.protocol == "c-store" and not self.host:
            raise ValueError("a c-store destination needs its host")
        return self


class PacsSettings(BaseModel):
    """Where ``sieve export --format dicom-sr --send NAME`` may send: nowhere unless named here.

    ``SIEVE_PACS__DESTINATIONS='{"pacs": {"protocol": "c-store", "host": "10.1.2.3",
    "port": 104, "called_ae": "PACS"}}'`` or a ``[pacs.destinations.pacs]`` table in sieve.toml.
    """

    destinations: dict[str, DestinationSettings] = Field(default_factory=dict)


class DeidSettings(BaseModel):
    """The key de-identification derives UIDs, pseudonyms and date shifts from.

    Unset, a random key is made on first use and kept in ``DATA_DIR/deid.key``
    (mode 0600): the same installation then maps the same UID the same way
    every time. Whoever holds the key can confirm a guessed original; keep it
    like a password.
    """

    secret: SecretStr | None = None
    # Private attributes known to hold nothing identifying, kept under retain-safe-private:
    # "GROUP,CREATOR,ELEMENT" in hex, e.g. "0019,GEMS_ACQU_01,1B". Empty: none is kept.
    safe_private: list[str] = Field(default_factory=list)
    # Where known devices burn text into their images, blanked under clean-pixel
    # whatever the OCR reads: '[{"name": "acme-us-banner", "manufacturer": "ACME",
    # "modality": "US", "boxes": [[0, 0, 640, 40]]}]'.
    pixel_regions: list[RegionRule] = Field(default_factory=list)


class WebSettings(BaseModel):
    """``sieve serve``: sessions, sign-in throttling, TLS and uploads."""

    session_hours: float = Field(default=8.0, gt=0, le=24 * 30)  # a working day
    # Failed sign-ins allowed per (user, address) in the window before refusing more.
    login_attempts: int = Field(default=5, ge=1)
    login_window_s: float = Field(default=300.0, gt=0)
    tls_certificate: Path | None = None  # PEM; with tls_key, the server speaks HTTPS
    tls_key: Path | None = None
    upload_max_bytes: int = Field(default=2 * 1024**3, gt=0)  # per uploaded file
    # The whole upload request, refused as it arrives once past this (before it is spooled).
    upload_request_max_bytes: int = Field(default=8 * 1024**3, gt=0)
    # Exports (results, custody reports) written at once, and how long each file is kept.
    exports_at_once: int = Field(default=2, ge=1, le=16)
    export_keep_hours: float = Field(default=24.0, gt=0)
    page_size: int = Field(default=50, ge=1, le=1000)  # items per API page (the most asked for)
    # A later range (from byte N > 0) of a file the same caller opened within this many
    # seconds continues that read (a player's fetches) and is not logged again; every
    # request from the start is.
    access_repeat_s: float = Field(default=300.0, ge=0)
    # Addresses of reverse proxies whose X-Forwarded-For is believed; none by default, so
    # no client can choose the address its sign-ins are throttled and audited under.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Folders whose files and subfolders the console and the API may submit by server path
    # (uploads aside). Empty: any path the server can read, as with the CLI.
    submit_roots: list[Path] = Field(default_factory=list)


class Settings(WorkerConfig, BaseSettings):
    """All of Sieve's configuration, typed: the worker's groups plus what only people use."""

    model_config = SettingsConfigDict(
        env_prefix="SIEVE_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=_default_data_dir)
    hub: HubSettings = HubSettings()
    pacs: PacsSettings = PacsSettings()
    deid: DeidSettings = DeidSettings()
    web: WebSettings = WebSettings()

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
