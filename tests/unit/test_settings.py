"""Settings come from SIEVE_* environment variables and an optional TOML file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest

from jobs.settings import Settings, get_settings, reset_settings_cache


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No SIEVE_* variable or sieve.toml from outside leaks in; the cache is reset around each test."""
    for name in list(os.environ):
        if name.upper().startswith("SIEVE_"):
            monkeypatch.delenv(name)
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    reset_settings_cache()
    yield
    reset_settings_cache()


def write_toml(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_top_level_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SIEVE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIEVE_DATABASE_URL", "postgresql+psycopg://sieve@db:5432/sieve")
    monkeypatch.setenv("SIEVE_BROKER_URL", "redis://broker:6379/3")

    settings = get_settings()

    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == "postgresql+psycopg://sieve@db:5432/sieve"
    assert settings.resolved_database_url == "postgresql+psycopg://sieve@db:5432/sieve"
    assert settings.broker_url == "redis://broker:6379/3"


def test_nested_settings_are_read_with_a_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIEVE_MODEL__N_CTX", "8192")
    monkeypatch.setenv("SIEVE_WORKER__QUEUE", "sieve-gpu")
    monkeypatch.setenv("SIEVE_LIMITS__MAX_PDF_PAGES", "50")

    settings = get_settings()

    assert settings.model.n_ctx == 8192
    assert settings.worker.queue == "sieve-gpu"
    assert settings.limits.max_pdf_pages == 50
    assert settings.model.seed == 1234  # untouched siblings keep their defaults


def test_settings_are_read_once_until_the_cache_is_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIEVE_WORKER__QUEUE", "first")
    first = get_settings()
    monkeypatch.setenv("SIEVE_WORKER__QUEUE", "second")

    assert get_settings() is first
    assert get_settings().worker.queue == "first"

    reset_settings_cache()

    assert get_settings().worker.queue == "second"


def test_a_sieve_toml_in_the_working_directory_is_read() -> None:
    write_toml(
        Path("sieve.toml"),
        'broker_url = "redis://from-file:6379/0"\n\n[model]\nn_ctx = 2048\n\n[worker]\nqueue = "from-file"\n',
    )

    settings = get_settings()

    assert settings.broker_url == "redis://from-file:6379/0"
    assert settings.model.n_ctx == 2048
    assert settings.worker.queue == "from-file"


def test_the_file_named_by_sieve_config_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = write_toml(tmp_path / "elsewhere.toml", '[worker]\nqueue = "named-file"\n')
    write_toml(Path("sieve.toml"), '[worker]\nqueue = "working-directory"\n')
    monkeypatch.setenv("SIEVE_CONFIG", str(config))

    assert get_settings().worker.queue == "named-file"


def test_the_environment_wins_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(
        Path("sieve.toml"),
        'broker_url = "redis://from-file:6379/0"\n\n[model]\nn_ctx = 2048\nseed = 7\n',
    )
    monkeypatch.setenv("SIEVE_BROKER_URL", "redis://from-env:6379/0")
    monkeypatch.setenv("SIEVE_MODEL__N_CTX", "16384")

    settings = get_settings()

    assert settings.broker_url == "redis://from-env:6379/0"
    assert settings.model.n_ctx == 16384
    assert settings.model.seed == 7  # a field only the file sets still comes from the file


def test_without_a_file_or_variables_the_defaults_apply() -> None:
    settings = get_settings()

    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.model.n_ctx == 4096
    assert settings.worker.queue == "sieve"
    assert settings.database_url is None


def test_the_default_database_is_an_sqlite_file_inside_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SIEVE_DATA_DIR", str(tmp_path / "data"))

    settings = get_settings()

    assert (
        settings.resolved_database_url == f"sqlite:///{(tmp_path / 'data' / 'sieve.db').resolve()}"
    )
    assert settings.objects_dir == tmp_path / "data" / "objects"


def test_a_relative_data_dir_gives_an_absolute_database_path(tmp_path: Path) -> None:
    settings = Settings(data_dir=Path("relative-data"))

    assert (
        settings.resolved_database_url == f"sqlite:///{Path.cwd() / 'relative-data' / 'sieve.db'}"
    )


def test_the_default_data_dir_follows_xdg_data_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    assert get_settings().data_dir == tmp_path / "xdg" / "sieve"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SIEVE_MODEL__N_CTX", "abc"),
        ("SIEVE_WORKER__CONCURRENCY", "many"),
        ("SIEVE_MODEL__TEMPERATURE", "hot"),
    ],
)
def test_an_invalid_value_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(pydantic.ValidationError):
        get_settings()


def test_an_invalid_value_in_the_file_is_refused() -> None:
    write_toml(Path("sieve.toml"), '[model]\nn_ctx = "lots"\n')

    with pytest.raises(pydantic.ValidationError):
        get_settings()


def test_the_hub_token_is_masked_when_settings_are_described(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIEVE_HUB__TOKEN", "hf_secret_value")

    settings = get_settings()

    assert settings.hub.token is not None
    assert settings.hub.token.get_secret_value() == "hf_secret_value"
    assert "hf_secret_value" not in repr(settings.describe())
