"""A real Orthanc (Debian's ``orthanc`` and ``orthanc-dicomweb``) for the tests.

Started on free loopback ports with a throwaway storage folder and its own
configuration: HTTP with the DICOMweb plug-in, a DICOM listener that stores
from any calling AE title, no remote access, no authentication (loopback
only), nothing persisted after the test.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLUGIN_DIRECTORY = Path("/usr/share/orthanc/plugins")
AE_TITLE = "ORTHANCTEST"


@dataclass(frozen=True)
class Orthanc:
    """A running Orthanc and where to reach it."""

    http_port: int
    dicom_port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as answer:
            return json.loads(answer.read())

    def get_bytes(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as answer:
            return bytes(answer.read())

    def upload(self, dicom: bytes) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/instances",
            data=dicom,
            method="POST",
            headers={"Content-Type": "application/dicom"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            return dict(json.loads(answer.read()))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def available() -> bool:
    return (
        Path("/usr/sbin/Orthanc").exists() and (PLUGIN_DIRECTORY / "libOrthancDicomWeb.so").exists()
    )


@contextlib.contextmanager
def running_orthanc(folder: Path) -> Iterator[Orthanc]:
    """Orthanc with its storage, index and log under ``folder``; stopped when the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    http_port, dicom_port = _free_port(), _free_port()
    configuration = {
        "Name": "sieve-test",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": AE_TITLE,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True,
        "UnknownSopClassAccepted": True,
        "Plugins": [str(PLUGIN_DIRECTORY / "libOrthancDicomWeb.so")],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "HttpsVerifyPeers": False,
        "StableAge": 1,
    }
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(configuration))
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen(
        ["/usr/sbin/Orthanc", str(config_path)], stdout=log, stderr=subprocess.STDOUT
    )
    server = Orthanc(http_port, dicom_port, process)
    try:
        _wait_until_ready(server, folder / "orthanc.log")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_ready(server: Orthanc, log_path: Path, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"Orthanc exited at start:\n{log_path.read_text()[-3000:]}")
        try:
            server.get("/system")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"Orthanc did not answer within {timeout_s:g} s")
