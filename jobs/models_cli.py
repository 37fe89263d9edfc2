"""``sieve models``: list the known models and pull one on request.

``pull`` is the one command in Sieve that reaches the network (see
:mod:`jobs.model_download`); ``list`` only looks at the local disk. Settings
come from :func:`jobs.settings.get_settings` alone. Progress goes to stderr and
the settings to use go to stdout, so ``sieve models pull NAME > model.env``
captures just the settings.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Self

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from jobs import model_catalog, model_download
from jobs.settings import get_settings


@click.group("models")
def models() -> None:
    """Download and inspect the GGUF models Sieve can run."""


@models.command("pull")
@click.argument("name")
def pull(name: str) -> None:
    """Download model NAME from the hub into the models directory.

    This is the only Sieve command that contacts a remote address
    (SIEVE_HUB__URL, https://huggingface.co by default).
    """
    settings = get_settings()
    model = model_catalog.known_model(name)

    token = settings.hub.token.get_secret_value() if settings.hub.token else None
    # soft_wrap: a 64-digit hash must stay on one line to be copied.
    console = Console(stderr=True, soft_wrap=True, highlight=False)
    console.print(f"Pulling {model.name} from {settings.hub.url}", markup=False)
    with _FileProgress(console) as file_progress:
        pulled = model_download.pull_model(
            model,
            hub_url=settings.hub.url,
            token=token,
            dest_root=settings.models_dir,
            progress=file_progress.update,
        )

    for record in pulled.files:
        console.print(f"  {record['filename']}: {_hash_status(record)}", markup=False)
    console.print(f"Files and manifest.json are in {pulled.directory}", markup=False)
    click.echo(_settings_text(pulled, model))


@models.command("list")
def list_models() -> None:
    """Show the known models, their files, and which are already downloaded."""
    models_dir = get_settings().models_dir
    click.echo(f"Models directory: {models_dir}")
    for model in model_catalog.KNOWN_MODELS.values():
        directory = models_dir / model.name
        manifest = model_download.read_manifest(directory) or {}
        recorded = {
            entry.get("filename"): entry
            for entry in manifest.get("files", [])
            if isinstance(entry, dict)
        }
        click.echo("")
        click.echo(f"{model.name}  (n_ctx {model.n_ctx})")
        click.echo(f"  {model.description}")
        click.echo(f"  License: {model.license_note}")
        for model_file in model.files:
            status = _presence(directory, model_file, recorded.get(model_file.filename))
            click.echo(
                f"  {model_file.role:<6}  {model_file.repo}/{model_file.filename}"
                f"  {_format_size(model_file.size_bytes)}  {status}"
            )


class _FileProgress:
    """One rich progress bar per file, created when the file's first bytes
    are reported."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def update(self, filename: str, done: int, total: int | None) -> None:
        """Progress callback for :func:`jobs.model_download.pull_model`."""
        task_id = self._tasks.get(filename)
        if task_id is None:
            task_id = self._progress.add_task(filename, total=total)
            self._tasks[filename] = task_id
        self._progress.update(task_id, completed=done, total=total)


def _hash_status(record: dict[str, object]) -> str:
    """How far to trust a pulled file, in words."""
    where = "already present, " if record.get("reused") else ""
    if record.get("verified"):
        return f"{where}SHA-256 verified against the catalog"
    return (
        f"{where}no pinned SHA-256 in the catalog; recorded {record.get('sha256')} "
        "in manifest.json (trust on first use)"
    )


def _settings_text(pulled: model_download.PulledModel, model: model_catalog.KnownModel) -> str:
    """The exact settings that make the workers load the pulled model."""
    model_path = pulled.model_path.resolve()
    mmproj_path = pulled.mmproj_path.resolve() if pulled.mmproj_path else None
    lines = [
        "",
        "Use it with these environment variables:",
        f"SIEVE_MODEL__PATH={shlex.quote(str(model_path))}",
    ]
    if mmproj_path:
        lines.append(f"SIEVE_MODEL__MMPROJ_PATH={shlex.quote(str(mmproj_path))}")
    lines.append(f"SIEVE_MODEL__N_CTX={model.n_ctx}")
    if not mmproj_path:
        lines.append("(text only: leave SIEVE_MODEL__MMPROJ_PATH unset)")
    lines += ["", "or in sieve.toml:", "[model]", f"path = {_toml_string(model_path)}"]
    if mmproj_path:
        lines.append(f"mmproj_path = {_toml_string(mmproj_path)}")
    lines.append(f"n_ctx = {model.n_ctx}")
    return "\n".join(lines)


def _toml_string(path: Path) -> str:
    """``path`` as a TOML basic string (JSON's escapes are valid TOML ones)."""
    return json.dumps(str(path), ensure_ascii=False)


def _presence(
    directory: Path, model_file: model_catalog.ModelFile, recorded: dict[str, object] | None
) -> str:
    """Whether a file is on disk, judged without reading it (a 7 GB hash is
    ``pull``'s job, not ``list``'s)."""
    if (directory / model_file.filename).is_file():
        if recorded and recorded.get("verified"):
            return "present (verified when pulled)"
        if recorded:
            return "present (trusted on first use)"
        return "present (not pulled by sieve)"
    if (directory / f"{model_file.filename}.part").exists():
        return "incomplete download"
    return "missing"


def _format_size(size_bytes: int | None) -> str:
    """A size for people: ``6.6 GiB``, ``250.0 MiB``; ``size?`` when unknown."""
    if size_bytes is None:
        return "size?"
    size = float(size_bytes)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}" if unit != "B" else f"{size_bytes} B"
        size /= 1024
    return f"{size:.1f} GiB"
