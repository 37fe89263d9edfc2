"""Structured reports sent to PACS that answer every way they can: real servers on 127.0.0.1.

A STOW-RS endpoint (``http.server`` in a thread, on an ephemeral port) plays
a scripted list of answers, reading back what was posted so that it
acknowledges exactly the instances it received; pynetdicom Storage SCPs
answer C-STORE with success, a warning or a failure status. The report sent
is the one ``sieve export --format dicom-sr`` writes, the destinations come
from ``SIEVE_PACS__DESTINATIONS`` and ``dicom_send`` is called as the CLI
calls it. Every outcome is checked in what the caller gets, in what the
server saw and in the audit trail: nothing refused is ever recorded as sent.
"""

from __future__ import annotations

import contextlib
import gc
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, HTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from click.testing import CliRunner
from pynetdicom import AE, StoragePresentationContexts, evt
from sqlalchemy import select

from db import migrate
from db.models import AuditEvent
from db.session import make_engine, make_session_factory
from jobs import cli, commands, dicom_send, dicom_sr
from jobs.settings import Settings
from tests import dicomgen
from tests.fake_model import FakeModel
from tests.unit.test_dicom_units import submit_archive
from tests.unit.test_embedded_pipeline import Embedded, make_embedded
from worker import errors

SEND_ACTIONS = ("dicom.sent", "dicom.send_failed")
# PS3.18 Failure Reasons, as a STOW-RS answer carries them.
SOP_CLASS_NOT_SUPPORTED = 0x0122
OUT_OF_RESOURCES = 0xA700


@dataclass(frozen=True)
class Report:
    """An SR written by the export of a reviewed job, ready to send."""

    env: Embedded
    job_id: int
    path: Path
    sop_instance_uid: str


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Report]:
    root = tmp_path_factory.mktemp("send")
    for env in make_embedded(root, FakeModel()):
        dicomgen.write_ct_series(root / "archive" / "ct", dicomgen.new_study())
        made = submit_archive(env, root / "archive")
        with env.session_factory() as session:
            (written,) = dicom_sr.write_reports(session, env.settings, made.job_id, root / "sr")
        yield Report(env, made.job_id, written.path, written.sop_instance_uid)


@pytest.fixture(autouse=True)
def no_pause_between_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait between attempts is not under test; the attempts themselves are."""
    monkeypatch.setattr(dicom_send, "_RETRY_PAUSE_S", 0.0)


def configured(
    report: Report, monkeypatch: pytest.MonkeyPatch, destinations: dict[str, Any]
) -> Settings:
    """Settings as the CLI reads them, with ``destinations`` in SIEVE_PACS__DESTINATIONS."""
    monkeypatch.setenv("SIEVE_PACS__DESTINATIONS", json.dumps(destinations))
    return Settings(data_dir=report.env.settings.data_dir)


def send(report: Report, settings: Settings, name: str) -> list[dicom_send.SendOutcome]:
    with report.env.session_factory() as session:
        return dicom_send.send_objects(
            session, settings, name, [report.path], report.job_id, "rita"
        )


def send_events(report: Report, name: str) -> list[AuditEvent]:
    """The audit events of sends to destination ``name``, oldest first."""
    with report.env.session_factory() as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.job_id == report.job_id, AuditEvent.action.in_(SEND_ACTIONS))
            .order_by(AuditEvent.id)
        ).all()
    return [e for e in events if e.details["destination"] == name]


# --- a STOW-RS endpoint -------------------------------------------------------------------


@dataclass
class StowServer:
    """What the endpoint was sent (the SOP Instance UIDs of each POST), and its root URL."""

    url: str
    posts: list[list[str]] = field(default_factory=list)


def store_response(
    instances: list[tuple[str, str]], failure_reason: int | None = None
) -> dict[str, Any]:
    """A Store Instances Response (PS3.18 10.5.3) in DICOM JSON: stored, or failed with a reason."""
    items = [
        {
            "00081150": {"vr": "UI", "Value": [sop_class]},
            "00081155": {"vr": "UI", "Value": [sop_instance]},
            **({"00081197": {"vr": "US", "Value": [failure_reason]}} if failure_reason else {}),
        }
        for sop_class, sop_instance in instances
    ]
    return {("00081198" if failure_reason else "00081199"): {"vr": "SQ", "Value": items}}


# Each answer: the HTTP status, and the body given the (class, instance) UIDs posted.
STOW_ANSWERS: dict[str, tuple[int, Any]] = {
    "unavailable": (503, lambda posted: None),
    "stored": (200, lambda posted: store_response(posted)),
    "stored another": (200, lambda posted: store_response([("1.2.3", "1.2.3.4")])),
    "conflict": (409, lambda posted: store_response(posted, SOP_CLASS_NOT_SUPPORTED)),
    "accepted with failures": (202, lambda posted: store_response(posted, OUT_OF_RESOURCES)),
    "forbidden": (403, lambda posted: None),
}


def posted_instances(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The (SOP Class, SOP Instance) UIDs of each part of a multipart/related POST."""
    message = BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    parts = message.get_payload() if message.is_multipart() else []
    datasets = [pydicom.dcmread(BytesIO(part.get_payload(decode=True))) for part in parts]
    return [(str(d.SOPClassUID), str(d.SOPInstanceUID)) for d in datasets]


@contextlib.contextmanager
def stow_endpoint(script: list[str]) -> Iterator[StowServer]:
    """A STOW-RS endpoint answering each POST with the next answer of ``script``."""
    answers = iter(script)
    server: HTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posted = posted_instances(self.headers["Content-Type"], body)
            stow.posts.append([sop_instance for _, sop_instance in posted])
            status, make_body = STOW_ANSWERS[next(answers)]
            answer = make_body(posted)
            payload = json.dumps(answer).encode() if answer is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads what was posted, not the access log."""

    server = HTTPServer(("127.0.0.1", 0), Handler)
    stow = StowServer(f"http://127.0.0.1:{server.server_address[1]}/dicom-web")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stow
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def stow_destination(stow: StowServer, attempts: int = 3) -> dict[str, Any]:
    return {"protocol": "stow-rs", "url": stow.url, "timeout_s": 5, "attempts": attempts}


def test_stow_rs_unavailable_twice_then_stored_is_sent_on_the_third_attempt(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stow_endpoint(["unavailable", "unavailable", "stored"]) as stow:
        settings = configured(report, monkeypatch, {"stow-busy": stow_destination(stow)})
        (outcome,) = send(report, settings, "stow-busy")

    assert outcome.sent and outcome.detail == "stored (STOW-RS)"
    # Three attempts, each one POST: the DICOMweb client does not retry behind Sieve's back.
    assert outcome.attempts == 3
    assert stow.posts == [[report.sop_instance_uid]] * 3
    (event,) = send_events(report, "stow-busy")
    assert event.action == "dicom.sent" and event.actor == "rita"
    assert event.details["attempts"] == 3
    assert event.details["sop_instance_uid"] == report.sop_instance_uid
    assert event.details["protocol"] == "stow-rs"


def test_stow_rs_unavailable_every_time_gives_up_after_the_configured_attempts(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stow_endpoint(["unavailable"] * 5) as stow:
        settings = configured(report, monkeypatch, {"stow-down": stow_destination(stow, 2)})
        (outcome,) = send(report, settings, "stow-down")

    assert not outcome.sent and outcome.attempts == 2
    assert outcome.detail.startswith("gave up: ") and "HTTP 503" in outcome.detail
    assert len(stow.posts) == 2
    (event,) = send_events(report, "stow-down")
    assert event.action == "dicom.send_failed" and event.details["attempts"] == 2


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        ("conflict", "refused: HTTP 409, failure reason 0x0122"),
        ("accepted with failures", "refused by STOW-RS: failure reason 0xA700"),
        ("forbidden", "refused: HTTP 403"),
        ("stored another", "refused by STOW-RS: failure reason not in the stored list"),
    ],
    ids=["409", "202-failed", "403", "200-other-instance"],
)
def test_a_stow_rs_refusal_is_not_sent_not_retried_and_audited_as_failed(
    report: Report, monkeypatch: pytest.MonkeyPatch, answer: str, detail: str
) -> None:
    name = f"stow-{answer.replace(' ', '-')}"
    with stow_endpoint([answer, "stored", "stored"]) as stow:
        settings = configured(report, monkeypatch, {name: stow_destination(stow)})
        (outcome,) = send(report, settings, name)

    assert not outcome.sent
    assert outcome.detail == detail
    assert outcome.attempts == 1 and stow.posts == [[report.sop_instance_uid]]
    events = send_events(report, name)
    assert [e.action for e in events] == ["dicom.send_failed"]
    assert events[0].details["detail"] == detail
    assert events[0].details["sop_instance_uid"] == report.sop_instance_uid


# --- a C-STORE SCP ------------------------------------------------------------------------


@contextlib.contextmanager
def storage_scp(status: int) -> Iterator[tuple[int, list[str]]]:
    """A Storage SCP answering every C-STORE with ``status``: its port, and the UIDs it got."""
    received: list[str] = []

    def on_c_store(event: evt.Event) -> int:
        received.append(str(event.request.AffectedSOPInstanceUID))
        return status

    entity = AE(ae_title="TEST-PACS")
    entity.supported_contexts = StoragePresentationContexts
    server = entity.start_server(
        ("127.0.0.1", 0), block=False, evt_handlers=[(evt.EVT_C_STORE, on_c_store)]
    )
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()


def c_store_destination(port: int, attempts: int = 3) -> dict[str, Any]:
    return {
        "protocol": "c-store",
        "host": "127.0.0.1",
        "port": port,
        "called_ae": "TEST-PACS",
        "timeout_s": 5,
        "attempts": attempts,
    }


def test_a_c_store_failure_status_is_not_sent_and_names_the_status(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    with storage_scp(OUT_OF_RESOURCES) as (port, received):
        settings = configured(report, monkeypatch, {"dimse-full": c_store_destination(port)})
        (outcome,) = send(report, settings, "dimse-full")

    assert not outcome.sent and outcome.attempts == 1
    assert outcome.detail == "refused (C-STORE status 0xA700)"
    assert received == [report.sop_instance_uid]  # asked once: a refusal is not retried
    (event,) = send_events(report, "dimse-full")
    assert event.action == "dicom.send_failed"
    assert event.details["protocol"] == "c-store" and "0xA700" in event.details["detail"]


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        (0x0000, "stored (C-STORE status 0x0000)"),
        (0xB007, "stored with a warning (C-STORE status 0xB007)"),
    ],
    ids=["success", "warning"],
)
def test_a_c_store_success_or_warning_is_sent(
    report: Report, monkeypatch: pytest.MonkeyPatch, status: int, detail: str
) -> None:
    name = f"dimse-{status:04x}"
    with storage_scp(status) as (port, received):
        settings = configured(report, monkeypatch, {name: c_store_destination(port)})
        (outcome,) = send(report, settings, name)

    assert outcome.sent and outcome.detail == detail and outcome.attempts == 1
    assert received == [report.sop_instance_uid]
    (event,) = send_events(report, name)
    assert event.action == "dicom.sent" and event.details["detail"] == detail


# pynetdicom 3.0 shuts down, but does not close, the socket of a refused connection.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in.*socket.socket:pytest.PytestUnraisableExceptionWarning"
)
def test_a_c_store_nobody_answers_is_retried_then_given_up(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port just free: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = configured(report, monkeypatch, {"dimse-off": c_store_destination(port, 2)})
    (outcome,) = send(report, settings, "dimse-off")
    gc.collect()  # the leaked sockets are reported here, under this test's filter

    assert not outcome.sent and outcome.attempts == 2
    assert outcome.detail.startswith("gave up: no association with TEST-PACS@127.0.0.1")
    (event,) = send_events(report, "dimse-off")
    assert event.action == "dicom.send_failed" and event.details["attempts"] == 2


def test_the_cli_reports_not_sent_and_exits_with_failure(
    report: Report, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with storage_scp(OUT_OF_RESOURCES) as (port, _):
        destinations = json.dumps({"dimse-cli": c_store_destination(port)})
        result = CliRunner().invoke(
            cli.cli,
            [
                *("export", str(report.job_id), "--format", "dicom-sr"),
                *("--out", str(tmp_path / "sr"), "--send", "dimse-cli"),
            ],
            env={
                "SIEVE_DATA_DIR": str(report.env.settings.data_dir),
                "SIEVE_PACS__DESTINATIONS": destinations,
            },
        )
    assert result.exit_code == commands.EXIT_ITEMS_FAILED, result.output
    line = f"dimse-cli\t{report.sop_instance_uid}\tNOT SENT\trefused (C-STORE status 0xA700)"
    assert line in result.output.splitlines()


def test_a_pacs_that_does_not_answer_a_study_search_is_a_clear_transient_error(
    tmp_path: Path,
) -> None:
    from jobs import dicom_pull

    settings = Settings(
        data_dir=tmp_path / "data",
        pacs={"destinations": {"down": {"protocol": "stow-rs", "url": "http://127.0.0.1:9/dw"}}},
    )
    migrate.upgrade(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            with pytest.raises(errors.PacsUnavailableError, match="down did not answer"):
                dicom_pull.find_studies(session, settings, "down", {"modality": "CT"}, "ada")
            (searched,) = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "pacs.searched")
            ).all()
    finally:
        engine.dispose()
    assert searched.details == {"source": "down", "keys": ["modality"], "studies": 0}
