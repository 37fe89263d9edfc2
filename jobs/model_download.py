"""Download a catalog model's files from a Hugging Face compatible hub.

This is the ONLY code in Sieve that opens a network connection to a remote
address, and it runs only when a user explicitly asks for it
(``sieve models pull NAME``). Nothing imports it at start-up, no worker or
pipeline calls it, and it never runs on its own.

Each file is streamed into ``<dest_root>/<name>/<filename>.part`` while its
SHA-256 is computed, checked against the catalog's pinned hash (or, for a file
with no pinned hash, recorded: trust on first use), and only then renamed to
its final name, so a final name always holds a complete, checked file.
``manifest.json`` beside the files records what was fetched, from where, when,
and whether each hash was verified against a pinned value.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from jobs.model_catalog import KnownModel, ModelFile
from worker import errors, hashing

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
# Per socket operation (connect, each read), not for the whole file: a 7 GB
# download may take an hour, a stalled connection should not.
SOCKET_TIMEOUT_S = 60.0
MANIFEST_NAME = "manifest.json"
ALLOWED_SCHEMES = frozenset({"http", "https"})
USER_AGENT = "sieve-models-pull"

# (filename, bytes done, bytes expected or None when the server does not say)
ProgressCallback = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class PulledModel:
    """Where a pulled model's files are, and what is known about each.

    ``files`` holds one dict per file: ``filename``, ``role``, ``repo``,
    ``url``, ``sha256`` (computed), ``size`` (bytes), ``verified`` (True when the
    hash matched a value pinned in the catalog, False when it was trusted on
    first use) and ``reused`` (True when an already present file was kept).
    """

    name: str
    directory: Path
    model_path: Path
    mmproj_path: Path | None
    files: list[dict[str, Any]] = field(default_factory=list)


def file_url(hub_url: str, model_file: ModelFile) -> str:
    """The download URL of ``model_file`` on the hub at ``hub_url``."""
    base = hub_url.rstrip("/")
    return f"{base}/{model_file.repo}/resolve/{model_file.revision}/{model_file.filename}"


def pull_model(
    model: KnownModel,
    *,
    hub_url: str,
    token: str | None,
    dest_root: Path,
    progress: ProgressCallback | None = None,
) -> PulledModel:
    """Fetch every file of ``model`` into ``dest_root / model.name``.

    This is the only network path in Sieve; call it only on a user's explicit
    request. A file already present whose SHA-256 equals the pinned hash (or
    the hash recorded in the manifest by an earlier pull) is kept without a
    request. ``token``, when given, is sent as ``Authorization: Bearer`` to the
    hub's host only (never to a host it redirects to) and never appears in
    messages. ``progress`` is called as bytes arrive.

    Raises :class:`worker.errors.ConfigurationError` for a hub URL that is not
    http(s) or a malformed catalog entry, and
    :class:`worker.errors.ModelDownloadError` for HTTP and connection errors, a
    file that cannot be written, or a hash mismatch (the partial file is
    deleted and nothing is left under the final name).
    """
    _check_hub_url(hub_url)
    _check_entry(model)
    directory = dest_root / model.name
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise errors.ModelDownloadError(f"cannot create {directory}: {error}") from error
    manifest_path = directory / MANIFEST_NAME
    recorded_hashes = _recorded_hashes(manifest_path)

    file_records: list[dict[str, Any]] = []
    for model_file in model.files:
        url = file_url(hub_url, model_file)
        record = _fetch_file(
            model_file,
            url=url,
            token=token,
            directory=directory,
            recorded_sha256=recorded_hashes.get((model_file.repo, model_file.filename)),
            progress=progress,
        )
        file_records.append(record)
        # Written after every file, so a file fetched on trust keeps its
        # recorded hash even when a later file of the same model fails.
        _write_manifest(manifest_path, model, hub_url, file_records)

    mmproj = model.mmproj_file
    return PulledModel(
        name=model.name,
        directory=directory,
        model_path=directory / model.model_file.filename,
        mmproj_path=directory / mmproj.filename if mmproj else None,
        files=file_records,
    )


def sha256_of_file(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``."""
    return hashing.hash_file(path).hexdigests["sha256"]


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of a pulled model's directory, or None if absent or unreadable."""
    manifest_path = directory / MANIFEST_NAME
    try:
        content = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("ignoring unreadable model manifest %s: %s", manifest_path, error)
        return None
    return content if isinstance(content, dict) else None


# --- one file ---------------------------------------------------------------


def _fetch_file(
    model_file: ModelFile,
    *,
    url: str,
    token: str | None,
    directory: Path,
    recorded_sha256: str | None,
    progress: ProgressCallback | None,
) -> dict[str, Any]:
    """Make ``directory / model_file.filename`` hold the checked file; describe it."""
    final_path = directory / model_file.filename
    expected_sha256 = model_file.sha256 or recorded_sha256
    record: dict[str, Any] = {
        "filename": model_file.filename,
        "role": model_file.role,
        "repo": model_file.repo,
        "revision": model_file.revision,
        "url": url,
        "pinned_sha256": model_file.sha256,
    }

    if expected_sha256 and final_path.is_file():
        present_sha256 = sha256_of_file(final_path)
        if present_sha256 == expected_sha256:
            size = final_path.stat().st_size
            logger.info("%s is already present and matches its hash", final_path)
            if progress:
                progress(model_file.filename, size, size)
            return record | {
                "sha256": present_sha256,
                "size": size,
                "verified": model_file.sha256 is not None,
                "reused": True,
            }
        logger.warning(
            "%s does not match its expected hash (%s, found %s); downloading it again",
            final_path,
            expected_sha256,
            present_sha256,
        )

    def report_bytes(done: int, total: int | None) -> None:
        if progress:
            progress(model_file.filename, done, total)

    part_path = directory / f"{model_file.filename}.part"
    logger.info("downloading %s to %s", url, final_path)
    try:
        actual_sha256, size = _download(
            url,
            token=token,
            part_path=part_path,
            size_hint=model_file.size_bytes,
            on_bytes=report_bytes,
        )
        if model_file.sha256 and actual_sha256 != model_file.sha256:
            raise errors.ModelDownloadError(
                f"{model_file.filename} from {url} has the wrong SHA-256: expected "
                f"{model_file.sha256}, got {actual_sha256}; the download was discarded"
            )
        os.replace(part_path, final_path)
    except BaseException:
        # Interrupted, failed or wrong: a partial file is never kept (resuming
        # is not supported, and multi-GB leftovers only waste disk).
        part_path.unlink(missing_ok=True)
        raise

    if model_file.sha256 is None:
        # Info, not warning: the caller gets verified=False in the record and
        # the manifest, and the CLI says it in words.
        logger.info(
            "%s has no pinned hash in the catalog; recorded the computed SHA-256 %s "
            "(trust on first use)",
            model_file.filename,
            actual_sha256,
        )
    return record | {
        "sha256": actual_sha256,
        "size": size,
        "verified": model_file.sha256 is not None,
        "reused": False,
    }


def _download(
    url: str,
    *,
    token: str | None,
    part_path: Path,
    size_hint: int | None,
    on_bytes: Callable[[int, int | None], None],
) -> tuple[str, int]:
    """Stream ``url`` into ``part_path`` (overwriting it); return (sha256, size)."""
    digest = hashlib.sha256()
    done = 0
    with _open_url(url, token) as response:
        announced = _content_length(response)
        total = announced if announced is not None else size_hint
        on_bytes(0, total)
        try:
            part_file: BinaryIO = part_path.open("wb")
        except OSError as error:
            raise errors.ModelDownloadError(f"cannot write {part_path}: {error}") from error
        with part_file:
            while chunk := _read_chunk(response, url):
                try:
                    part_file.write(chunk)
                except OSError as error:
                    raise errors.ModelDownloadError(f"cannot write {part_path}: {error}") from error
                digest.update(chunk)
                done += len(chunk)
                on_bytes(done, total)
    if announced is not None and done != announced:
        raise errors.ModelDownloadError(
            f"download of {url} ended early: got {done} of {announced} bytes"
        )
    return digest.hexdigest(), done


# --- HTTP -------------------------------------------------------------------


class _HubRedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects (the hub sends files from a CDN) but only to http(s),
    and strips the token when the redirect leaves the hub's host, so the
    credential is never handed to a third party."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        target = urlsplit(newurl)
        if target.scheme not in ALLOWED_SCHEMES:
            raise errors.ModelDownloadError(
                f"download of {req.full_url} redirected to a non-http(s) address"
            )
        new_request = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new_request is not None and target.netloc != urlsplit(req.full_url).netloc:
            new_request.remove_header("Authorization")
        return new_request


@contextmanager
def _open_url(url: str, token: str | None) -> Iterator[http.client.HTTPResponse]:
    """Open ``url`` for reading, mapping every HTTP or connection error to
    :class:`worker.errors.ModelDownloadError` (with the URL, never the token)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(_HubRedirectHandler)
    try:
        response = opener.open(request, timeout=SOCKET_TIMEOUT_S)
    except urllib.error.HTTPError as error:
        error.close()
        hint = ""
        if error.code in (401, 403):
            hint = " (the repository may be gated: accept its terms and set SIEVE_HUB__TOKEN)"
        raise errors.ModelDownloadError(
            f"download of {url} failed: HTTP {error.code} {error.reason}{hint}"
        ) from error
    except urllib.error.URLError as error:
        raise errors.ModelDownloadError(f"download of {url} failed: {error.reason}") from error
    except (OSError, http.client.HTTPException) as error:
        raise errors.ModelDownloadError(f"download of {url} failed: {error}") from error
    with response:
        yield response


def _read_chunk(response: http.client.HTTPResponse, url: str) -> bytes:
    """The next chunk of the body (empty at the end); a broken or stalled
    connection becomes :class:`worker.errors.ModelDownloadError`."""
    try:
        return response.read(CHUNK_BYTES)
    except (OSError, http.client.HTTPException) as error:
        raise errors.ModelDownloadError(
            f"download of {url} failed while reading: {error or type(error).__name__}"
        ) from error


def _content_length(response: http.client.HTTPResponse) -> int | None:
    """The announced body size in bytes, if the server gave a usable one."""
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# --- checks and the manifest --------------------------------------------------


def _check_hub_url(hub_url: str) -> None:
    """Reject anything but an http(s) URL with a host, before any connection."""
    parts = urlsplit(hub_url)
    if parts.scheme not in ALLOWED_SCHEMES or not parts.netloc:
        raise errors.ConfigurationError(
            f"the hub URL must be an http:// or https:// address, not {hub_url!r} "
            "(set SIEVE_HUB__URL)"
        )


def _check_entry(model: KnownModel) -> None:
    """A catalog entry must name one model file, at most one projector, and
    plain file names (no paths that could escape the model's directory)."""
    roles = [model_file.role for model_file in model.files]
    if roles.count("model") != 1 or roles.count("mmproj") > 1:
        raise errors.ConfigurationError(
            f"catalog entry {model.name!r} must have one model file and at most one mmproj"
        )
    for name in [model.name, *(model_file.filename for model_file in model.files)]:
        if not name or Path(name).name != name or name in (".", ".."):
            raise errors.ConfigurationError(
                f"catalog entry {model.name!r} has an unsafe name {name!r}"
            )


def _recorded_hashes(manifest_path: Path) -> dict[tuple[str, str], str]:
    """(repo, filename) → SHA-256 as recorded by an earlier pull."""
    manifest = read_manifest(manifest_path.parent)
    if manifest is None:
        return {}
    hashes: dict[tuple[str, str], str] = {}
    for entry in manifest.get("files", []):
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str):
            hashes[(str(entry.get("repo")), str(entry.get("filename")))] = entry["sha256"]
    return hashes


def _write_manifest(
    manifest_path: Path,
    model: KnownModel,
    hub_url: str,
    file_records: list[dict[str, Any]],
) -> None:
    """Replace the manifest atomically, so a crash never leaves half of one."""
    manifest = {
        "name": model.name,
        "description": model.description,
        "license_note": model.license_note,
        "hub_url": hub_url,
        "pulled_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": file_records,
    }
    temporary_path = manifest_path.with_name(f"{manifest_path.name}.tmp")
    temporary_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary_path, manifest_path)
