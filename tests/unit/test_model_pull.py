"""``sieve models pull``: fetching catalog models, checked, from a hub.

Every test talks to a throwaway HTTP server on 127.0.0.1 that lays files out
the way Hugging Face does (``{repo}/resolve/{revision}/{filename}``); nothing
here reaches the internet. The catalog is data, so tests use small made-up
entries and check the real catalog only for being well formed.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs import cli, model_catalog, model_download
from jobs.model_catalog import KnownModel, ModelFile
from jobs.settings import reset_settings_cache
from worker import errors

REPO = "test-owner/tiny-GGUF"
MODEL_BYTES = b"GGUF" + bytes(range(256)) * 9000  # a bit over 2 MiB: several chunks
MMPROJ_BYTES = b"GGUF-mmproj" + b"\x01" * 5000


def sha256_hex(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass
class SeenRequest:
    path: str
    authorization: str | None


@dataclass
class LocalHub:
    """A hub on 127.0.0.1 serving files from ``root``, recording each request."""

    url: str
    root: Path
    requests: list[SeenRequest] = field(default_factory=list)
    redirects: dict[str, str] = field(default_factory=dict)

    def publish(self, repo: str, filename: str, content: bytes, revision: str = "main") -> str:
        path = self.root / repo / "resolve" / revision / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return f"{self.url}/{repo}/resolve/{revision}/{filename}"


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the hub's directory; remembers what was asked and with which token."""

    hub: LocalHub

    def do_GET(self) -> None:
        self.hub.requests.append(SeenRequest(self.path, self.headers.get("Authorization")))
        if self.path in self.hub.redirects:
            self.send_response(302)
            self.send_header("Location", self.hub.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def start_hub(tmp_path: Path) -> Iterator[Callable[..., LocalHub]]:
    """A factory of local hubs; every server is shut down after the test."""
    servers: list[tuple[http.server.ThreadingHTTPServer, threading.Thread]] = []

    def start(label: str = "hub") -> LocalHub:
        root = tmp_path / f"served-{label}"
        root.mkdir()
        hub = LocalHub(url="", root=root)
        handler_class = type("Handler", (RecordingHandler,), {"hub": hub})
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler_class, directory=str(root))
        )
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        servers.append((server, thread))
        hub.url = f"http://127.0.0.1:{server.server_address[1]}"
        return hub

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def hub(start_hub: Callable[..., LocalHub]) -> LocalHub:
    return start_hub()


def tiny_model(
    name: str = "tiny-test",
    *,
    model_sha256: str | None = sha256_hex(MODEL_BYTES),
    mmproj_sha256: str | None = None,
    with_mmproj: bool = True,
) -> KnownModel:
    """A two-file catalog entry: the weights pinned, the projector unpinned."""
    files = [ModelFile(REPO, "tiny-Q4_K_M.gguf", "model", model_sha256, len(MODEL_BYTES))]
    if with_mmproj:
        files.append(ModelFile(REPO, "mmproj-tiny.gguf", "mmproj", mmproj_sha256, None))
    return KnownModel(
        name=name,
        description="a tiny test model",
        files=tuple(files),
        n_ctx=2048,
        license_note="test data",
    )


def publish_tiny(hub: LocalHub) -> None:
    hub.publish(REPO, "tiny-Q4_K_M.gguf", MODEL_BYTES)
    hub.publish(REPO, "mmproj-tiny.gguf", MMPROJ_BYTES)


# --- pull_model ---------------------------------------------------------------


def test_pull_writes_the_files_and_a_manifest_and_reports_progress(
    hub: LocalHub, tmp_path: Path
) -> None:
    publish_tiny(hub)
    calls: list[tuple[str, int, int | None]] = []

    pulled = model_download.pull_model(
        tiny_model(),
        hub_url=hub.url,
        token=None,
        dest_root=tmp_path / "models",
        progress=lambda filename, done, total: calls.append((filename, done, total)),
    )

    directory = tmp_path / "models" / "tiny-test"
    assert pulled.directory == directory
    assert pulled.model_path == directory / "tiny-Q4_K_M.gguf"
    assert pulled.mmproj_path == directory / "mmproj-tiny.gguf"
    assert pulled.model_path.read_bytes() == MODEL_BYTES
    assert pulled.mmproj_path.read_bytes() == MMPROJ_BYTES
    assert not list(directory.glob("*.part"))

    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["name"] == "tiny-test"
    assert manifest["hub_url"] == hub.url
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", manifest["pulled_at"])
    by_name = {entry["filename"]: entry for entry in manifest["files"]}
    assert by_name["tiny-Q4_K_M.gguf"]["sha256"] == sha256_hex(MODEL_BYTES)
    assert by_name["tiny-Q4_K_M.gguf"]["size"] == len(MODEL_BYTES)
    assert by_name["tiny-Q4_K_M.gguf"]["verified"] is True
    assert by_name["tiny-Q4_K_M.gguf"]["url"] == (f"{hub.url}/{REPO}/resolve/main/tiny-Q4_K_M.gguf")
    # No pinned hash: the computed one is recorded, and marked as not verified.
    assert by_name["mmproj-tiny.gguf"]["sha256"] == sha256_hex(MMPROJ_BYTES)
    assert by_name["mmproj-tiny.gguf"]["verified"] is False
    assert pulled.files == manifest["files"]

    model_calls = [call for call in calls if call[0] == "tiny-Q4_K_M.gguf"]
    assert model_calls[0] == ("tiny-Q4_K_M.gguf", 0, len(MODEL_BYTES))
    assert model_calls[-1] == ("tiny-Q4_K_M.gguf", len(MODEL_BYTES), len(MODEL_BYTES))
    assert len(model_calls) >= 3  # streamed in 1 MiB chunks, not read at once
    assert ("mmproj-tiny.gguf", len(MMPROJ_BYTES), len(MMPROJ_BYTES)) in calls


def test_the_url_follows_the_hub_layout_and_a_pinned_revision(
    hub: LocalHub, tmp_path: Path
) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    hub.publish(REPO, "tiny-Q4_K_M.gguf", MODEL_BYTES, revision=commit)
    model = KnownModel(
        name="pinned",
        description="",
        files=(ModelFile(REPO, "tiny-Q4_K_M.gguf", "model", None, None, revision=commit),),
        n_ctx=1024,
        license_note="",
    )

    pulled = model_download.pull_model(model, hub_url=hub.url + "/", token=None, dest_root=tmp_path)

    assert [seen.path for seen in hub.requests] == [f"/{REPO}/resolve/{commit}/tiny-Q4_K_M.gguf"]
    assert pulled.mmproj_path is None
    assert pulled.model_path.read_bytes() == MODEL_BYTES


def test_a_sha256_mismatch_raises_and_leaves_no_file(hub: LocalHub, tmp_path: Path) -> None:
    publish_tiny(hub)
    expected = sha256_hex(b"what the catalog promised")

    with pytest.raises(errors.ModelDownloadError) as raised:
        model_download.pull_model(
            tiny_model(model_sha256=expected), hub_url=hub.url, token=None, dest_root=tmp_path
        )

    message = str(raised.value)
    assert expected in message
    assert sha256_hex(MODEL_BYTES) in message
    assert raised.value.code == "model_download_failed"
    directory = tmp_path / "tiny-test"
    assert not (directory / "tiny-Q4_K_M.gguf").exists()
    assert not (directory / "tiny-Q4_K_M.gguf.part").exists()


def test_a_second_pull_keeps_present_files_without_asking_the_hub(
    hub: LocalHub, tmp_path: Path
) -> None:
    publish_tiny(hub)
    model_download.pull_model(tiny_model(), hub_url=hub.url, token=None, dest_root=tmp_path)
    requests_after_first_pull = len(hub.requests)

    pulled = model_download.pull_model(
        tiny_model(), hub_url=hub.url, token=None, dest_root=tmp_path
    )

    # The pinned file matches its pin; the unpinned one matches the hash the
    # first pull recorded in the manifest.
    assert requests_after_first_pull == 2
    assert len(hub.requests) == 2
    assert [record["reused"] for record in pulled.files] == [True, True]
    assert pulled.model_path.read_bytes() == MODEL_BYTES


def test_a_present_file_that_does_not_match_its_pin_is_downloaded_again(
    hub: LocalHub, tmp_path: Path
) -> None:
    publish_tiny(hub)
    directory = tmp_path / "tiny-test"
    directory.mkdir()
    (directory / "tiny-Q4_K_M.gguf").write_bytes(b"damaged")
    (directory / "tiny-Q4_K_M.gguf.part").write_bytes(b"stale leftover " * 1000)

    pulled = model_download.pull_model(
        tiny_model(with_mmproj=False), hub_url=hub.url, token=None, dest_root=tmp_path
    )

    assert pulled.model_path.read_bytes() == MODEL_BYTES
    assert not (directory / "tiny-Q4_K_M.gguf.part").exists()
    assert len(hub.requests) == 1


def test_http_404_names_the_url(hub: LocalHub, tmp_path: Path) -> None:
    with pytest.raises(errors.ModelDownloadError) as raised:
        model_download.pull_model(
            tiny_model(), hub_url=hub.url, token="secret-token", dest_root=tmp_path
        )

    message = str(raised.value)
    assert f"{hub.url}/{REPO}/resolve/main/tiny-Q4_K_M.gguf" in message
    assert "404" in message
    assert "secret-token" not in message
    assert not (tmp_path / "tiny-test" / "tiny-Q4_K_M.gguf").exists()


def test_an_unreachable_hub_is_a_download_error(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    hub_url = f"http://127.0.0.1:{closed_port}"

    with pytest.raises(errors.ModelDownloadError, match=re.escape(hub_url)):
        model_download.pull_model(tiny_model(), hub_url=hub_url, token=None, dest_root=tmp_path)


@pytest.mark.parametrize(
    "hub_url", ["file:///etc", "ftp://127.0.0.1/hub", "huggingface.co", "http://"]
)
def test_only_http_and_https_hubs_are_accepted(hub_url: str, tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="http"):
        model_download.pull_model(tiny_model(), hub_url=hub_url, token=None, dest_root=tmp_path)
    assert not (tmp_path / "tiny-test").exists()


def test_the_bearer_token_is_sent_only_when_set(hub: LocalHub, tmp_path: Path) -> None:
    publish_tiny(hub)

    model_download.pull_model(
        tiny_model(with_mmproj=False), hub_url=hub.url, token=None, dest_root=tmp_path / "a"
    )
    model_download.pull_model(
        tiny_model(with_mmproj=False),
        hub_url=hub.url,
        token="secret-token",
        dest_root=tmp_path / "b",
    )

    assert [seen.authorization for seen in hub.requests] == [None, "Bearer secret-token"]


def test_the_token_does_not_follow_a_redirect_to_another_host(
    start_hub: Callable[..., LocalHub], tmp_path: Path
) -> None:
    hub: LocalHub = start_hub("hub")
    cdn: LocalHub = start_hub("cdn")
    cdn_url = cdn.publish(REPO, "tiny-Q4_K_M.gguf", MODEL_BYTES)
    hub.redirects[f"/{REPO}/resolve/main/tiny-Q4_K_M.gguf"] = cdn_url

    pulled = model_download.pull_model(
        tiny_model(with_mmproj=False), hub_url=hub.url, token="secret-token", dest_root=tmp_path
    )

    assert pulled.model_path.read_bytes() == MODEL_BYTES
    assert [seen.authorization for seen in hub.requests] == ["Bearer secret-token"]
    assert [seen.authorization for seen in cdn.requests] == [None]


def test_a_redirect_to_a_non_http_address_is_refused(hub: LocalHub, tmp_path: Path) -> None:
    # urllib itself refuses file: redirects; ftp: it would follow.
    hub.redirects[f"/{REPO}/resolve/main/tiny-Q4_K_M.gguf"] = "ftp://127.0.0.1/tiny.gguf"

    with pytest.raises(errors.ModelDownloadError, match="non-http"):
        model_download.pull_model(
            tiny_model(with_mmproj=False), hub_url=hub.url, token=None, dest_root=tmp_path
        )


def test_a_catalog_entry_with_a_path_for_a_file_name_is_refused(
    hub: LocalHub, tmp_path: Path
) -> None:
    model = KnownModel(
        name="escape",
        description="",
        files=(ModelFile(REPO, "../outside.gguf", "model", None, None),),
        n_ctx=1024,
        license_note="",
    )

    with pytest.raises(errors.ConfigurationError, match="unsafe"):
        model_download.pull_model(model, hub_url=hub.url, token=None, dest_root=tmp_path)
    assert hub.requests == []


# --- the catalog ----------------------------------------------------------------


def test_the_real_catalog_is_well_formed() -> None:
    assert {"gemma-4-12b-it", "gemma-3-4b-it", "gemma-3-270m-it"} <= set(model_catalog.KNOWN_MODELS)
    for key, model in model_catalog.KNOWN_MODELS.items():
        assert model.name == key
        assert model.n_ctx > 0
        assert model.description and model.license_note
        roles = [model_file.role for model_file in model.files]
        assert roles.count("model") == 1, key
        assert roles.count("mmproj") <= 1, key
        for model_file in model.files:
            assert re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", model_file.repo)
            assert model_file.filename.endswith(".gguf")
            assert "/" not in model_file.filename
            assert model_file.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", model_file.sha256)
            assert model_file.size_bytes is None or model_file.size_bytes > 0
    for multimodal in ("gemma-4-12b-it", "gemma-3-4b-it"):
        roles = [f.role for f in model_catalog.KNOWN_MODELS[multimodal].files]
        assert roles.count("mmproj") == 1


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(errors.ConfigurationError) as raised:
        model_catalog.known_model("gemma-99")

    for name in model_catalog.KNOWN_MODELS:
        assert name in str(raised.value)


# --- the CLI ----------------------------------------------------------------------


@pytest.fixture
def cli_env(hub: LocalHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Settings pointing at the local hub and a fresh data directory."""
    data_dir = tmp_path / "data"
    monkeypatch.chdir(tmp_path)  # no sieve.toml from the working directory
    monkeypatch.delenv("SIEVE_CONFIG", raising=False)
    monkeypatch.delenv("SIEVE_HUB__TOKEN", raising=False)
    monkeypatch.setenv("SIEVE_HUB__URL", hub.url)
    monkeypatch.setenv("SIEVE_DATA_DIR", str(data_dir))
    monkeypatch.setitem(model_catalog.KNOWN_MODELS, "tiny-test", tiny_model())
    reset_settings_cache()
    yield data_dir
    reset_settings_cache()


def test_cli_pull_prints_the_settings_to_use(hub: LocalHub, cli_env: Path) -> None:
    publish_tiny(hub)

    result = CliRunner().invoke(cli.cli, ["models", "pull", "tiny-test"])

    assert result.exit_code == 0, result.output
    directory = (cli_env / "models" / "tiny-test").resolve()
    assert (directory / "tiny-Q4_K_M.gguf").read_bytes() == MODEL_BYTES
    assert f"SIEVE_MODEL__PATH={directory / 'tiny-Q4_K_M.gguf'}" in result.stdout
    assert f"SIEVE_MODEL__MMPROJ_PATH={directory / 'mmproj-tiny.gguf'}" in result.stdout
    assert "SIEVE_MODEL__N_CTX=2048" in result.stdout
    assert "[model]" in result.stdout
    assert f'path = "{directory / "tiny-Q4_K_M.gguf"}"' in result.stdout
    assert f'mmproj_path = "{directory / "mmproj-tiny.gguf"}"' in result.stdout
    assert "trust on first use" in result.stderr


def test_cli_pull_of_an_unknown_name_exits_2(cli_env: Path) -> None:
    result = CliRunner().invoke(cli.cli, ["models", "pull", "gemma-99"])

    assert result.exit_code == 2
    assert "unknown model 'gemma-99'" in result.stderr
    assert "gemma-4-12b-it" in result.stderr


def test_cli_pull_that_fails_exits_2_with_the_url(hub: LocalHub, cli_env: Path) -> None:
    result = CliRunner().invoke(cli.cli, ["models", "pull", "tiny-test"])

    assert result.exit_code == 2
    assert f"{hub.url}/{REPO}/resolve/main/tiny-Q4_K_M.gguf" in result.stderr
    assert "404" in result.stderr


def test_cli_list_shows_what_is_present(hub: LocalHub, cli_env: Path) -> None:
    publish_tiny(hub)
    runner = CliRunner()

    before = runner.invoke(cli.cli, ["models", "list"])
    runner.invoke(cli.cli, ["models", "pull", "tiny-test"])
    after = runner.invoke(cli.cli, ["models", "list"])

    assert before.exit_code == 0 and after.exit_code == 0
    assert "gemma-3-270m-it-Q4_K_M.gguf" in before.stdout
    tiny_lines = [line for line in before.stdout.splitlines() if "tiny-Q4_K_M.gguf" in line]
    assert tiny_lines and "missing" in tiny_lines[0]
    tiny_lines = [line for line in after.stdout.splitlines() if "tiny-Q4_K_M.gguf" in line]
    assert "present (verified when pulled)" in tiny_lines[0]
    mmproj_lines = [line for line in after.stdout.splitlines() if "mmproj-tiny.gguf" in line]
    assert "present (trusted on first use)" in mmproj_lines[0]
    assert len(hub.requests) == 2  # list itself never contacts the hub
