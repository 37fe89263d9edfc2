"""The console and REST API on the embedded default: SQLite, the fake model, a test client.

Access rules, sign-in, CSRF, the access log, pagination, artifacts with range
requests and exports, in seconds. The same API against the real PostgreSQL,
and the pages in a real Chromium with a real worker, are in
``tests/integration/test_web.py``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from PIL import Image, ImageDraw
from sqlalchemy import select

from db.models import ApiToken, AuditEvent, Item, ItemRun, ItemSource, StoredSegment, User
from jobs import accounts, embedded, submit
from jobs.web import actions
from jobs.web.app import create_app
from jobs.web.exports import ExportRegistry
from tests import dicomgen, pdfgen
from tests.fake_model import FakeModel
from tests.unit.test_embedded_pipeline import Embedded, make_embedded
from worker.task_specs import build_task

PASSWORD = "correct horse battery"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Embedded]:
    yield from make_embedded(tmp_path, FakeModel())


def submit_folder(env: Embedded, folder: Path, name: str, *, run: bool = True) -> submit.Submission:
    """Submit ``folder`` to summarize on the embedded default; run its items unless told not to."""
    made = submit.submit(
        env.session_factory,
        env.settings,
        paths=[folder],
        task=build_task("summarize", {}, env.settings.model.max_text_chars),
        name=name,
        executor="in_process",
    )
    if run:
        embedded.run_item_runs(env.context, made.item_run_ids)
    return made


@pytest.fixture
def job_id(env: Embedded, tmp_path: Path) -> int:
    folder = tmp_path / "matter"
    folder.mkdir()
    pdfgen.make_text_pdf(folder / "memo.pdf", pdfgen.MEMO_PAGES, title="Memo")
    picture = Image.new("RGB", (200, 80), "white")
    ImageDraw.Draw(picture).text((10, 30), "INVOICE 42", fill="black")
    picture.save(folder / "scan.png")
    pdfgen.make_corrupt_pdf(folder / "corrupt.pdf")
    made = submit_folder(env, folder, "matter")
    return made.job_id


@pytest.fixture
def users(env: Embedded) -> dict[str, str]:
    """One account per role (and a reviewer with no grant); name -> bearer token."""
    tokens: dict[str, str] = {}
    with env.session_factory.begin() as session:
        for name, role in (
            ("ada", "admin"),
            ("rita", "reviewer"),
            ("otto", "reviewer"),
            ("aud", "auditor"),
        ):
            accounts.add_user(session, name, role, PASSWORD, "test")
            tokens[name] = accounts.create_token(session, name, "test", "test")
    return tokens


@pytest.fixture
def client(env: Embedded) -> Iterator[TestClient]:
    app = create_app(
        env.settings,
        env.session_factory,
        run_in_process=lambda ids: embedded.run_item_runs(env.context, ids) and None,
    )
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def grant(env: Embedded, name: str, job_id: int) -> None:
    with env.session_factory.begin() as session:
        accounts.grant_job(session, name, job_id, "test")


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> str:
    """Sign in through the form; return the session's CSRF token (read from a page)."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    home = client.get("/")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text)
    assert csrf is not None
    return csrf.group(1)


def post_sign_in(client: TestClient, name: str, password: str) -> Any:
    """One sign-in through the form, whatever its answer."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token.group(1)},
        follow_redirects=False,
    )


def events(env: Embedded, action: str) -> list[AuditEvent]:
    with env.session_factory() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def item_of(env: Embedded, job_id: int, suffix: str) -> Item:
    with env.session_factory() as session:
        items = session.scalars(select(Item).where(Item.job_id == job_id)).all()
        return next(item for item in items if item.path.endswith(suffix))


# --- who may do what -------------------------------------------------------------------


def test_an_unauthenticated_call_is_a_401_problem_and_a_page_redirects_to_login(
    client: TestClient, job_id: int
) -> None:
    response = client.get(f"/api/jobs/{job_id}")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")
    page = client.get(f"/jobs/{job_id}", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == f"/login?next=/jobs/{job_id}"
    assert client.get("/api/jobs", headers=bearer("sieve_not-a-token")).status_code == 401


def test_roles_and_grants_decide_who_reads_what(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    memo = item_of(env, job_id, "memo.pdf")
    grant(env, "rita", job_id)
    # A reviewer reads what she was granted, and only that.
    assert client.get(f"/api/items/{memo.id}", headers=bearer(users["rita"])).status_code == 200
    refused = client.get(f"/api/items/{memo.id}", headers=bearer(users["otto"]))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert client.get("/api/jobs", headers=bearer(users["otto"])).json()["jobs"] == []
    # An auditor reads the audit trail and the report, never the content.
    assert client.get(f"/api/items/{memo.id}", headers=bearer(users["aud"])).status_code == 403
    assert client.get(f"/api/jobs/{job_id}/audit", headers=bearer(users["aud"])).status_code == 200
    assert client.get(f"/api/jobs/{job_id}/report", headers=bearer(users["aud"])).status_code == 200
    # Only an admin changes things.
    for name in ("rita", "aud"):
        response = client.post(
            f"/api/jobs/{job_id}/runs", json={"failed_only": True}, headers=bearer(users[name])
        )
        assert response.status_code == 403
    assert client.get(f"/api/jobs/{job_id}/audit", headers=bearer(users["rita"])).status_code == 403
    assert client.get("/api/users", headers=bearer(users["rita"])).status_code == 403


def test_opening_an_item_writes_an_access_event_in_the_job_chain(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    memo = item_of(env, job_id, "memo.pdf")
    grant(env, "rita", job_id)
    before = len(events(env, "content.viewed"))
    detail = client.get(f"/api/items/{memo.id}", headers=bearer(users["rita"])).json()
    assert detail["runs"][0]["state"] == "done" and detail["segments"]
    viewed = events(env, "content.viewed")
    assert len(viewed) == before + 1
    event = viewed[-1]
    assert (event.actor, event.item_id, event.chain) == ("rita", memo.id, f"job:{job_id}")
    assert event.details["what"] == "item" and event.details["role"] == "reviewer"
    # The chain still verifies with the access events in it, and the auditor sees them.
    audit_view = client.get(f"/api/jobs/{job_id}/audit", headers=bearer(users["aud"])).json()
    assert audit_view["verified"] is True
    assert audit_view["actions"]["content.viewed"] == before + 1
    # A refused read is not content read: no event.
    client.get(f"/api/items/{memo.id}", headers=bearer(users["otto"]))
    assert len(events(env, "content.viewed")) == before + 1


def test_reading_identifiers_is_audited_apart(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    memo = item_of(env, job_id, "memo.pdf")
    response = client.get(f"/api/items/{memo.id}/identifiers", headers=bearer(users["ada"]))
    assert response.status_code == 200
    assert events(env, "content.viewed")[-1].details["what"] == "identifiers"


# --- signing in, sessions and CSRF ---------------------------------------------------------


def test_a_session_signs_in_through_the_form_with_a_strict_http_only_cookie(
    client: TestClient, users: dict[str, str]
) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    response = client.post(
        "/login",
        data={"name": "ada", "password": PASSWORD, "csrf_token": token.group(1), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "sieve_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback; TLS sets it
    assert client.get("/api/me").json() == {"name": "ada", "role": "admin", "via": "session"}


def test_a_form_post_without_the_csrf_token_is_refused(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    csrf = sign_in(client, "ada")
    refused = client.post(f"/jobs/{job_id}/pause", data={}, follow_redirects=False)
    assert refused.status_code == 403 and 'data-code="csrf_failed"' in refused.text
    wrong = client.post(f"/jobs/{job_id}/pause", data={"csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert client.post("/api/jobs/1/pause").status_code == 403  # a cookie call needs the header
    assert not events(env, "job.paused")
    accepted = client.post(
        f"/jobs/{job_id}/pause", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert accepted.status_code == 303
    assert [event.actor for event in events(env, "job.paused")] == ["ada"]


def test_the_sign_in_form_itself_needs_its_token(client: TestClient, users: dict[str, str]) -> None:
    response = client.post("/login", data={"name": "ada", "password": PASSWORD})
    assert response.status_code == 403


def test_failed_sign_ins_are_audited_and_then_rate_limited(
    env: Embedded, client: TestClient, users: dict[str, str]
) -> None:
    attempts = env.settings.web.login_attempts
    for _ in range(attempts):
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        response = client.post(
            "/login", data={"name": "ada", "password": "wrong" * 3, "csrf_token": token.group(1)}
        )
        assert response.status_code == 401 and "Wrong name or password" in response.text
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    limited = client.post(
        "/login", data={"name": "ada", "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert limited.status_code == 429  # even the right password waits out the window
    assert int(limited.headers["retry-after"]) > 0
    failed = events(env, "login.failed")
    assert len(failed) == attempts + 1
    assert failed[-1].details["reason"] == "rate limited" and failed[-1].chain == "global"
    # A restarted server replays the window's failures from the chain: still refused.
    restarted = create_app(env.settings, env.session_factory)
    with TestClient(restarted, base_url="http://127.0.0.1") as again:
        page = again.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        still = again.post(
            "/login", data={"name": "ada", "password": PASSWORD, "csrf_token": token.group(1)}
        )
    assert still.status_code == 429


def test_a_disabled_user_s_session_and_tokens_stop_working(
    env: Embedded, client: TestClient, users: dict[str, str]
) -> None:
    sign_in(client, "rita")
    with env.session_factory.begin() as session:
        accounts.set_disabled(session, "rita", True, "test")
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/me", headers=bearer(users["rita"])).status_code == 401


# --- jobs, items, artifacts, runs, exports ---------------------------------------------------


def test_items_page_through_a_cursor_and_filter_as_rerun_where(
    client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/api/jobs/{job_id}/items", params=params, headers=bearer(users["ada"]))
        assert page.status_code == 200
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 3 and seen == sorted(seen)
    failed = client.get(
        f"/api/jobs/{job_id}/items",
        params={"where": "state = failed"},
        headers=bearer(users["ada"]),
    ).json()["items"]
    assert [item["error_code"] for item in failed] == ["corrupt_file"]
    bad = client.get(
        f"/api/jobs/{job_id}/items", params={"where": "state =="}, headers=bearer(users["ada"])
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_filter"


def test_an_artifact_streams_with_its_type_and_honours_ranges(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    scan = item_of(env, job_id, "scan.png")
    with env.session_factory() as session:
        segment = session.scalars(
            select(StoredSegment).where(
                StoredSegment.item_id == scan.id, StoredSegment.artifact_path.is_not(None)
            )
        ).first()
    assert segment is not None
    url = f"/api/artifacts/{segment.id}"
    whole = client.get(url, headers=bearer(users["ada"]))
    assert whole.status_code == 200 and whole.headers["content-type"] == "image/png"
    assert whole.content.startswith(b"\x89PNG")
    part = client.get(url, headers={**bearer(users["ada"]), "Range": "bytes=4-11"})
    assert part.status_code == 206 and part.content == whole.content[4:12]
    assert [e.details["what"] for e in events(env, "content.viewed")] == ["artifact"]
    assert client.get(url, headers=bearer(users["aud"])).status_code == 403
    # However a first read asks (a suffix range is the whole file), it is logged.
    grant(env, "rita", job_id)
    suffix = client.get(url, headers={**bearer(users["rita"]), "Range": "bytes=-100000"})
    assert suffix.status_code in (200, 206) and suffix.content == whole.content
    assert [e.actor for e in events(env, "content.viewed")] == ["ada", "rita"]
    assert suffix.headers["content-security-policy"] == "sandbox"
    original = client.get(
        f"/api/items/{item_of(env, job_id, 'memo.pdf').id}/original", headers=bearer(users["rita"])
    )
    assert original.headers["content-disposition"] == "attachment"  # a document never renders here


def test_a_failed_item_is_rerun_from_the_api_and_the_runs_diff(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    made = client.post(
        f"/api/jobs/{job_id}/runs", json={"failed_only": True}, headers=bearer(users["ada"])
    )
    assert made.status_code == 201, made.text
    assert made.json()["number"] == 2 and made.json()["items"] == 1
    runs = client.get(f"/api/jobs/{job_id}/runs", headers=bearer(users["ada"])).json()["runs"]
    assert [run["number"] for run in runs] == [1, 2] and runs[1]["created_by"] == "ada"
    diff = client.get(f"/api/jobs/{job_id}/runs/1/diff/2", headers=bearer(users["ada"])).json()
    assert diff["summary"]["only_in_a"] == 2 and diff["summary"]["unchanged"] == 1
    shown = events(env, "content.viewed")[-1]
    assert shown.details["what"] == "run_diff" and shown.details["runs"] == [1, 2]
    nothing = client.post(
        f"/api/jobs/{job_id}/runs",
        json={"where": "state = cancelled"},
        headers=bearer(users["ada"]),
    )
    assert nothing.status_code == 400 and nothing.json()["code"] == "usage"


@dataclass(frozen=True)
class WaitingJob:
    """A job of three letters: the first done, the other two not yet started."""

    job_id: int
    done_item_id: int
    waiting: list[int]  # the item runs not started


@pytest.fixture
def waiting_job(env: Embedded, tmp_path: Path) -> WaitingJob:
    folder = tmp_path / "letters"
    folder.mkdir()
    for number in range(3):
        (folder / f"letter{number}.txt").write_text(f"Letter {number}: the goods come Friday.\n")
    made = submit_folder(env, folder, "letters", run=False)
    first, *waiting = made.item_run_ids
    embedded.run_item_runs(env.context, [first])
    with env.session_factory() as session:
        done = session.get(ItemRun, first)
        assert done is not None
        return WaitingJob(made.job_id, done.item_id, waiting)


def test_an_admin_pauses_a_job_from_the_api_and_unpausing_releases_its_items(
    env: Embedded, client: TestClient, waiting_job: WaitingJob, users: dict[str, str]
) -> None:
    job_id, admin = waiting_job.job_id, bearer(users["ada"])
    paused = client.post(f"/api/jobs/{job_id}/pause", headers=admin)
    assert paused.status_code == 200
    assert paused.json() == {"job_id": job_id, "paused": True, "changed": True}
    assert client.post(f"/api/jobs/{job_id}/pause", headers=admin).json()["changed"] is False
    # Their messages reaching a worker now start nothing: the items wait.
    embedded.run_item_runs(env.context, waiting_job.waiting)
    held = client.get(f"/api/jobs/{job_id}", headers=admin).json()
    assert held["paused"] is True and held["run"]["counts"] == {"done": 1, "pending": 2}
    assert [(e.actor, e.job_id) for e in events(env, "job.paused")] == [("ada", job_id)]

    unpaused = client.post(f"/api/jobs/{job_id}/unpause", headers=admin)
    assert unpaused.status_code == 200
    assert unpaused.json() == {"job_id": job_id, "paused": False, "changed": True}
    assert [(e.actor, e.job_id) for e in events(env, "job.unpaused")] == [("ada", job_id)]
    # The unpause hands them on again (to the workers, or here to the server's runner).
    released = client.get(f"/api/jobs/{job_id}", headers=admin).json()
    assert released["paused"] is False and released["run"]["counts"] == {"done": 3}


def test_an_admin_cancels_a_job_from_the_api_and_its_finished_results_are_kept(
    env: Embedded, client: TestClient, waiting_job: WaitingJob, users: dict[str, str]
) -> None:
    job_id, admin = waiting_job.job_id, bearer(users["ada"])
    cancelled = client.post(f"/api/jobs/{job_id}/cancel", headers=admin)
    assert cancelled.status_code == 200
    report = cancelled.json()
    assert (report["items_cancelled"], report["items_running"]) == (2, 0)
    assert len(report["runs_cancelled"]) == 1
    embedded.run_item_runs(env.context, waiting_job.waiting)  # a late message starts nothing
    detail = client.get(f"/api/jobs/{job_id}", headers=admin).json()
    assert detail["run"]["state"] == "cancelled"
    assert detail["run"]["counts"] == {"done": 1, "cancelled": 2}
    kept = client.get(f"/api/items/{waiting_job.done_item_id}", headers=admin).json()
    assert kept["runs"][0]["state"] == "done" and kept["runs"][0]["result"] is not None
    (event,) = events(env, "run.cancelled")
    assert (event.actor, event.job_id, event.details["items_cancelled"]) == ("ada", job_id, 2)
    again = client.post(f"/api/jobs/{job_id}/cancel", headers=admin).json()
    assert again["runs_cancelled"] == [] and again["items_cancelled"] == 0


def test_a_reviewer_or_an_auditor_may_not_pause_unpause_or_cancel(
    env: Embedded, client: TestClient, waiting_job: WaitingJob, users: dict[str, str]
) -> None:
    job_id = waiting_job.job_id
    grant(env, "rita", job_id)  # a grant lets her read the job, not steer it
    for name in ("rita", "aud"):
        for action in ("pause", "unpause", "cancel"):
            refused = client.post(f"/api/jobs/{job_id}/{action}", headers=bearer(users[name]))
            assert refused.status_code == 403, (name, action)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["code"] == "forbidden"
    detail = client.get(f"/api/jobs/{job_id}", headers=bearer(users["ada"])).json()
    assert detail["paused"] is False and detail["run"]["counts"] == {"done": 1, "pending": 2}
    for action in ("job.paused", "job.unpaused", "run.cancelled"):
        assert not events(env, action)


def test_an_export_is_started_watched_and_downloaded(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    started = client.post(
        f"/api/jobs/{job_id}/exports", json={"format": "jsonl"}, headers=bearer(users["ada"])
    )
    assert started.status_code == 202
    export_id = started.json()["id"]
    deadline = time.monotonic() + 30
    while (state := client.get(f"/api/exports/{export_id}", headers=bearer(users["ada"])).json())[
        "state"
    ] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state["state"] == "done" and state["rows"] == 3
    body = client.get(state["download"], headers=bearer(users["ada"]))
    assert body.status_code == 200 and len(body.text.splitlines()) == 3
    downloaded = events(env, "content.viewed")[-1]  # results are content: in the access log
    assert (downloaded.actor, downloaded.details["what"]) == ("ada", "export")
    # An auditor may take the custody report, not the results.
    refused = client.post(
        f"/api/jobs/{job_id}/exports", json={"format": "csv"}, headers=bearer(users["aud"])
    )
    assert refused.status_code == 403


def test_a_job_is_submitted_by_upload_and_runs(
    env: Embedded, client: TestClient, users: dict[str, str]
) -> None:
    response = client.post(
        "/api/jobs/upload",
        files=[("files", ("note.txt", b"The shipment left on Monday.\n", "text/plain"))],
        data={"task": "summarize", "name": "uploaded"},
        headers=bearer(users["ada"]),
    )
    assert response.status_code == 201, response.text
    new_job = response.json()["job_id"]
    detail = client.get(f"/api/jobs/{new_job}", headers=bearer(users["ada"])).json()
    assert detail["submitted_by"] == "ada" and detail["run"]["counts"] == {"done": 1}
    with env.session_factory() as session:
        source = session.scalars(select(ItemSource).where(ItemSource.job_id == new_job)).one()
        recorded = (source.path, source.item.sha256)
    # Streamed straight into the content store: hashed as it came, no scratch copy anywhere.
    sent_sha256 = hashlib.sha256(b"The shipment left on Monday.\n").hexdigest()
    assert recorded == ("upload/note.txt", sent_sha256)
    assert not (env.settings.data_dir / "uploads").exists()
    assert not list((env.settings.objects_dir / "tmp").glob("*"))


def test_an_uploaded_dicomdir_is_read_from_the_store_and_not_checked_against_folders(
    env: Embedded, client: TestClient, users: dict[str, str], tmp_path: Path
) -> None:
    study = dicomgen.new_study()
    source = dicomgen.write_mr_series(tmp_path / "source", study, slices=2)
    dicomdir = dicomgen.write_dicomdir(tmp_path / "media", source.paths)
    sent = [dicomdir, *sorted(p for p in dicomdir.parent.rglob("IM*") if p.is_file())]
    response = client.post(
        "/api/jobs/upload",
        files=[("files", (path.name, path.read_bytes(), "application/dicom")) for path in sent],
        data={"task": "summarize"},
        headers=bearer(users["ada"]),
    )
    assert response.status_code == 201, response.text
    (read,) = events(env, "dicom.fileset_read")
    assert read.details["referenced"] == 2 and read.details["missing"] == []
    assert "uploaded without its folders" in read.details["problem"]
    detail = client.get(f"/api/jobs/{response.json()['job_id']}", headers=bearer(users["ada"]))
    assert detail.json()["file_count"] == 2  # the instances; the DICOMDIR is never an item


def test_an_uploaded_name_is_reduced_to_a_safe_base_name() -> None:
    taken: set[str] = set()
    names = []
    for sent in (
        "..\\..\\boot.ini",
        "../../etc/passwd",
        "a/b/report.pdf",
        "report.pdf",
        "\x00\n",
        "..",
    ):
        names.append(actions.upload_name(sent, taken))
        taken.add(names[-1])
    assert names == ["boot.ini", "passwd", "report.pdf", "1-report.pdf", "upload", "1-upload"]


def test_a_missing_server_path_is_a_clear_400(client: TestClient, users: dict[str, str]) -> None:
    response = client.post(
        "/api/jobs", json={"paths": ["/no/such/folder"]}, headers=bearer(users["ada"])
    )
    assert response.status_code == 400
    assert "no such file or folder" in response.json()["detail"]
    one_label = client.post(
        "/api/jobs",
        json={"paths": ["/tmp"], "task": "classify", "labels": ["only"]},
        headers=bearer(users["ada"]),
    )
    assert one_label.status_code == 400 and one_label.json()["code"] == "usage"
    for odd in ("relative/folder", "/tmp/nul\x00byte"):
        refused = client.post("/api/jobs", json={"paths": [odd]}, headers=bearer(users["ada"]))
        assert refused.status_code == 400 and "absolute" in refused.json()["detail"], odd


def test_pages_render_for_each_role(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    memo = item_of(env, job_id, "memo.pdf")
    sign_in(client, "ada")
    job_page = client.get(f"/jobs/{job_id}")
    assert job_page.status_code == 200 and "corrupt_file" in job_page.text
    assert "Re-run failed" in job_page.text
    item_page = client.get(f"/items/{memo.id}")
    assert item_page.status_code == 200 and 'class="citation" href="#seg-page-1"' in item_page.text
    assert 'id="seg-page-1"' in item_page.text
    assert client.get("/users").status_code == 200
    for header, value in (
        ("content-security-policy", "default-src 'self'"),
        ("x-frame-options", "DENY"),
    ):
        assert value in item_page.headers[header]
    assert client.get("/openapi.json").json()["paths"]["/api/jobs"]


def test_an_admin_manages_accounts_from_the_users_page(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    csrf = sign_in(client, "ada")

    def post(path: str, **fields: Any) -> None:
        response = client.post(path, data={"csrf_token": csrf, **fields}, follow_redirects=False)
        assert response.status_code == 303, response.text

    post("/users/rita/grant", job_id=job_id)
    assert 'action="/users/rita/revoke"' in client.get("/users").text
    assert client.get(f"/api/jobs/{job_id}/items", headers=bearer(users["rita"])).status_code == 200
    post("/users/rita/revoke", job_id=job_id)
    assert client.get(f"/api/jobs/{job_id}/items", headers=bearer(users["rita"])).status_code == 403
    post("/users/otto/disable")
    assert 'aria-label="Enable otto"' in client.get("/users").text
    post("/users/otto/enable")
    assert 'aria-label="Disable otto"' in client.get("/users").text
    post("/users/rita/password", password="a new long passphrase")
    client.cookies.clear()
    with pytest.raises(AssertionError):
        sign_in(client, "rita")  # the old password no longer signs in
    sign_in(client, "rita", "a new long passphrase")
    recorded = [e.action for e in events(env, "grant.revoked")] + [
        e.action for e in events(env, "user.password_reset")
    ]
    assert recorded == ["grant.revoked", "user.password_reset"]
    assert [e.details["user"] for e in events(env, "user.enabled")] == ["otto"]


def test_the_job_page_shows_the_reconciliation_report(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    corrupt = item_of(env, job_id, "corrupt.pdf")
    sign_in(client, "aud")  # an auditor reads reports, not documents
    page = client.get(f"/jobs/{job_id}").text
    assert "check: 3 submitted paths = 1 processed + 0 duplicate + 1 failed + 1 unsupported" in page
    assert "<tr><td>processed</td><td>1</td></tr>" in page
    rows = re.findall(r'<table class="grid report-rows">.*?</table>', page, re.S)
    assert len(rows) == 1 and corrupt.path in rows[0] and "<code>corrupt_file</code>" in rows[0]
    assert "<code>model_capability</code>" in rows[0]  # the picture this model cannot see
    assert "memo.pdf" not in rows[0]  # processed paths are counted, not listed
    assert f'<a href="/items/{corrupt.id}">' not in rows[0]  # no link to content for an auditor
    assert f'href="/api/jobs/{job_id}/report"' in page
    full = client.get(f"/api/jobs/{job_id}/report").json()
    assert {row["path"] for row in full["rows"]} >= {corrupt.path}


@pytest.mark.tools
def test_a_video_item_shows_its_frames_beside_a_player_that_seeks(
    env: Embedded, client: TestClient, users: dict[str, str], tmp_path: Path
) -> None:
    from tests import mediagen

    folder = tmp_path / "footage"
    folder.mkdir()
    mediagen.make_video_with_cuts(folder / "depot.mp4")
    made = submit_folder(env, folder, "footage")
    video = item_of(env, made.job_id, "depot.mp4")
    sign_in(client, "ada")
    page = client.get(f"/items/{video.id}").text
    assert (
        f'<video id="player" class="player" controls preload="metadata" src="/api/items/{video.id}/original"'
        in page
    )
    frames = re.findall(r'<img class="artifact" src="(/api/artifacts/\d+)" alt="([^"]+)"', page)
    assert len(frames) >= 2, page  # one frame a scene, at least
    assert len(re.findall(r'class="seek" data-seek="[0-9.]+"', page)) >= len(frames)
    first_frame = client.get(frames[0][0])
    assert first_frame.status_code == 200 and first_frame.headers["content-type"] == "image/png"
    assert first_frame.content.startswith(b"\x89PNG")
    original = client.get(f"/api/items/{video.id}/original", headers={"Range": "bytes=0-15"})
    assert original.status_code == 206 and original.headers["content-type"] == "video/mp4"


@pytest.mark.tools
def test_an_audio_item_plays_from_its_original_and_its_timestamps_seek(
    env: Embedded, client: TestClient, users: dict[str, str], tmp_path: Path
) -> None:
    from tests import mediagen

    folder = tmp_path / "recordings"
    folder.mkdir()
    mediagen.make_speech_audio(folder / "call.mp3", ["The shipment left on Monday morning."])
    made = submit_folder(env, folder, "calls")
    call = item_of(env, made.job_id, "call.mp3")
    sign_in(client, "ada")
    page = client.get(f"/items/{call.id}").text
    assert (
        f'id="player" class="player" controls preload="metadata" src="/api/items/{call.id}/original"'
        in page
    )
    assert 'class="seek" data-seek="0.0"' in page
    assert re.search(r'class="citation" href="#seg-[^"]+" data-seek="', page)
    url = f"/api/items/{call.id}/original"
    first = client.get(url, headers={"Range": "bytes=0-99"})
    later = client.get(url, headers={"Range": "bytes=100-199"})
    assert first.status_code == later.status_code == 206
    assert first.headers["content-type"] == "audio/mpeg"

    def originals() -> int:
        return sum(1 for e in events(env, "content.viewed") if e.details["what"] == "original")

    assert originals() == 1  # the player's follow-up range continues the same read
    assert client.get(url).status_code == 200  # a whole new read (a download) is logged
    assert client.get(url, headers={"Range": "bytes=0-99"}).status_code == 206  # so is a restart
    assert originals() == 3


def test_serve_refuses_a_non_loopback_address_unless_told(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from jobs import cli
    from jobs.web.app import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    refused = CliRunner().invoke(
        cli.cli, ["serve", "--host", "0.0.0.0"], env={"SIEVE_DATA_DIR": str(tmp_path)}
    )
    assert refused.exit_code == 2 and "--allow-remote" in refused.output


def test_the_users_and_tokens_commands_manage_accounts(env: Embedded, job_id: int) -> None:
    from click.testing import CliRunner

    from jobs import cli
    from jobs.settings import reset_settings_cache

    runner = CliRunner()
    environment = {"SIEVE_DATA_DIR": str(env.settings.data_dir)}
    reset_settings_cache()

    def sieve(*args: str, stdin: str | None = None) -> Any:
        result = runner.invoke(cli.cli, list(args), input=stdin, env=environment)
        reset_settings_cache()
        return result

    assert sieve("users", "add", "nora", "--role", "reviewer", stdin=PASSWORD + "\n").exit_code == 0
    duplicate = sieve("users", "add", "nora", "--role", "admin", stdin=PASSWORD + "\n")
    assert duplicate.exit_code == 2 and "exists already" in duplicate.output
    assert (
        sieve("users", "add", "Bad Name", "--role", "admin", stdin=PASSWORD + "\n").exit_code == 2
    )
    assert sieve("users", "grant", "nora", str(job_id)).exit_code == 0
    made = sieve("tokens", "create", "nora")
    token = made.output.strip().splitlines()[-1]
    assert made.exit_code == 0 and token.startswith("sieve_")
    listing = sieve("users", "list").output
    assert "nora" in listing and "reviewer" in listing and str(job_id) in listing
    new_password = "another long password"
    assert sieve("users", "reset-password", "nora", stdin=new_password + "\n").exit_code == 0
    with env.session_factory() as session:
        assert accounts.verify_password(session, "nora", new_password) is not None
        assert accounts.verify_password(session, "nora", PASSWORD) is None
        assert accounts.user_for_token(session, token) is not None
    listed = sieve("tokens", "list", "nora").output
    assert "live" in listed and token not in listed  # only ids and labels are shown
    assert sieve("users", "revoke", "nora", str(job_id)).exit_code == 0
    with env.session_factory() as session:
        nora = accounts.find_user(session, "nora")
        assert accounts.granted_job_ids(session, nora.id) == set()
        token_id = accounts.tokens_of(session, "nora")[0].id
    assert sieve("tokens", "revoke", str(token_id)).exit_code == 0
    with env.session_factory() as session:
        assert accounts.user_for_token(session, token) is None
    assert sieve("users", "disable", "nora").exit_code == 0
    with env.session_factory() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    for action in (
        "user.created",
        "grant.added",
        "token.created",
        "user.password_reset",
        "user.disabled",
    ):
        assert action in actions


def test_the_throttle_holds_a_name_sprayed_from_many_addresses() -> None:
    from jobs.web.throttle import ANY_ADDRESS_FACTOR, LoginThrottle

    throttle = LoginThrottle(attempts=2, window_s=60)
    throttle.failed("ada", "10.0.0.1")
    assert throttle.retry_after("ada", "10.0.0.1") == 0
    throttle.failed("ada", "10.0.0.1")
    assert throttle.retry_after("ada", "10.0.0.1") > 0
    assert throttle.retry_after("ada", "10.0.0.2") == 0  # another address still may
    for number in range(2 * ANY_ADDRESS_FACTOR):
        throttle.failed("ada", f"10.0.1.{number}")
    assert throttle.retry_after("ada", "10.9.9.9") > 0  # but not once the name is sprayed
    assert throttle.retry_after("bob", "10.0.0.1") == 0


def test_the_throttle_holds_an_address_that_tries_many_names() -> None:
    from jobs.web.throttle import ANY_USER_FACTOR, LoginThrottle

    throttle = LoginThrottle(attempts=2, window_s=60)
    allowance = 2 * ANY_USER_FACTOR
    for number in range(allowance - 1):
        throttle.failed(f"name{number}", "10.0.0.1")
    throttle.succeeded("ada", "10.0.0.1")  # one account it holds buys no fresh allowance
    assert throttle.retry_after("someone", "10.0.0.1") == 0
    throttle.failed("one-more", "10.0.0.1")
    assert 0 < throttle.retry_after("someone", "10.0.0.1") <= 60
    assert throttle.retry_after("someone", "10.0.0.2") == 0
    restarted = LoginThrottle(attempts=2, window_s=60)
    restarted.replay([(1.0, f"name{number}", "10.0.0.1", False) for number in range(allowance)])
    assert restarted.retry_after("someone", "10.0.0.1") > 0


def test_one_address_trying_many_names_is_refused_and_another_address_is_not(
    env: Embedded, users: dict[str, str]
) -> None:
    from jobs.web.throttle import ANY_USER_FACTOR

    env.settings.web.login_attempts = 1  # an address may then fail ANY_USER_FACTOR times
    app = create_app(env.settings, env.session_factory)
    sprayer = ("203.0.113.7", 40000)
    with TestClient(app, base_url="http://127.0.0.1", client=sprayer) as spraying:
        # Otto works behind the same address (an office's NAT) and signed in from it before.
        assert post_sign_in(spraying, "otto", PASSWORD).status_code == 303
        spraying.cookies.clear()
        for number in range(ANY_USER_FACTOR):
            guessed = post_sign_in(spraying, f"guess{number}", "wrong" * 3)
            assert guessed.status_code == 401, number
        # A name not tried before, with its right password: the address waits.
        held = post_sign_in(spraying, "ada", PASSWORD)
        # A name known at the address is not locked out by a guesser beside it.
        assert post_sign_in(spraying, "otto", PASSWORD).status_code == 303
    assert held.status_code == 429 and int(held.headers["retry-after"]) > 0
    with TestClient(app, base_url="http://127.0.0.1", client=("198.51.100.2", 40000)) as other:
        assert post_sign_in(other, "ada", PASSWORD).status_code == 303
    failed = events(env, "login.failed")
    assert len(failed) == ANY_USER_FACTOR + 1
    assert {event.details["address"] for event in failed} == {sprayer[0]}
    assert (failed[-1].actor, failed[-1].details["reason"]) == ("ada", "rate limited")
    # A restarted server replays the address's failures from the chain: still refused.
    restarted = create_app(env.settings, env.session_factory)
    with TestClient(restarted, base_url="http://127.0.0.1", client=sprayer) as again:
        assert post_sign_in(again, "rita", PASSWORD).status_code == 429
        assert post_sign_in(again, "otto", PASSWORD).status_code == 303  # still known there


def test_serve_warns_when_it_would_send_passwords_in_clear() -> None:
    from jobs.users_cli import exposure_warning

    for host in ("0.0.0.0", "10.1.2.3", "::"):
        warning = exposure_warning(host, tls=False)
        assert warning is not None and "without TLS" in warning, host
        assert "SIEVE_WEB__TLS_CERTIFICATE" in warning
        assert exposure_warning(host, tls=True) is None
    for host in ("127.0.0.1", "::1", "localhost"):
        assert exposure_warning(host, tls=False) is None


def test_passwords_and_tokens_are_stored_only_as_hashes(env: Embedded) -> None:
    """After ``users add``, ``users reset-password`` and ``tokens create``, no column of the
    accounts' tables (nor of the audit trail) holds a password or a token."""
    from click.testing import CliRunner

    from jobs import cli
    from jobs.settings import reset_settings_cache

    environment = {"SIEVE_DATA_DIR": str(env.settings.data_dir)}
    if env.settings.database_url is not None:  # the same test on PostgreSQL
        environment["SIEVE_DATABASE_URL"] = env.settings.database_url
    new_password = "another long password"

    def sieve(*args: str, stdin: str | None = None) -> str:
        reset_settings_cache()
        result = CliRunner().invoke(cli.cli, list(args), input=stdin, env=environment)
        reset_settings_cache()
        assert result.exit_code == 0, result.output
        return str(result.output)

    sieve("users", "add", "nora", "--role", "reviewer", stdin=PASSWORD + "\n")
    sieve("users", "reset-password", "nora", stdin=new_password + "\n")
    token = sieve("tokens", "create", "nora").strip().splitlines()[-1]
    assert token.startswith("sieve_")
    with env.session_factory() as session:
        nora = accounts.find_user(session, "nora")
        assert nora.password_hash.startswith("$argon2id$")
        assert accounts.verify_password(session, "nora", new_password) is not None
        stored = session.scalars(select(ApiToken.token_sha256).where(ApiToken.user_id == nora.id))
        assert list(stored) == [hashlib.sha256(token.encode()).hexdigest()]
        secrets = (PASSWORD, new_password, token.removeprefix("sieve_"))
        scanned = 0
        for table in (User.__table__, ApiToken.__table__, AuditEvent.__table__):
            for row in session.execute(select(table)):
                for column, value in row._mapping.items():
                    scanned += 1
                    for secret in secrets:
                        assert secret not in str(value), f"{table.name}.{column}"
    assert scanned > 20


# --- hardening: bodies, errors, TLS, notices, notes, old exports -------------------------


def test_a_body_past_its_limit_is_refused_before_it_is_spooled(
    env: Embedded, client: TestClient, users: dict[str, str]
) -> None:
    env.settings.web.upload_request_max_bytes = 4096
    declared = client.post(
        "/api/jobs/upload",
        files=[("files", ("big.txt", b"x" * 10_000, "text/plain"))],
        headers=bearer(users["ada"]),
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"
    assert declared.json()["code"] == "limit_exceeded"
    assert declared.headers["x-content-type-options"] == "nosniff"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b"y" * 1024

    streamed = client.post(
        "/api/jobs/upload",
        content=chunks(),
        headers={**bearer(users["ada"]), "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert streamed.status_code == 413 and streamed.json()["code"] == "limit_exceeded"
    json_body = client.post(
        "/api/jobs",
        content=b'{"paths": ["' + b"a" * (1024 * 1024) + b'"]}',
        headers={**bearer(users["ada"]), "Content-Type": "application/json"},
    )
    assert json_body.status_code == 413
    assert not list((env.settings.objects_dir / "tmp").glob("*"))  # nothing half-stored


def test_an_unexpected_error_is_a_problem_with_the_security_headers(env: Embedded) -> None:
    app = create_app(env.settings, env.session_factory)

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/broken", broken)
    app.add_api_route("/broken", broken)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as plain:
        api = plain.get("/api/broken")
        page = plain.get("/broken")
    assert api.status_code == 500 and api.json()["code"] == "internal"
    assert "a bug" not in api.text  # the detail stays in the server's log
    assert page.status_code == 500 and 'data-code="internal"' in page.text
    for response in (api, page):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"


def test_over_https_the_cookie_is_secure_and_hsts_is_sent(
    env: Embedded, users: dict[str, str]
) -> None:
    app = create_app(env.settings, env.session_factory)
    with TestClient(app, base_url="https://127.0.0.1") as tls:
        page = tls.get("/login")
        assert page.headers["strict-transport-security"].startswith("max-age=")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        response = tls.post(
            "/login",
            data={"name": "ada", "password": PASSWORD, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
    assert response.status_code == 303
    assert "sieve_session=" in response.headers["set-cookie"]
    assert "Secure" in response.headers["set-cookie"]
    with TestClient(app, base_url="http://127.0.0.1") as plain:
        assert "strict-transport-security" not in plain.get("/login").headers


def test_a_notice_is_shown_once_and_cannot_be_put_in_a_link(
    client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    csrf = sign_in(client, "ada")
    spoofed = client.get(f"/jobs/{job_id}?notice=Call+555-0100+to+unlock+your+account")
    assert spoofed.status_code == 200 and "555-0100" not in spoofed.text
    paused = client.post(f"/jobs/{job_id}/pause", data={"csrf_token": csrf})
    assert paused.status_code == 200 and '<p class="notice" role="status">paused</p>' in paused.text
    assert paused.url.query == b"" and paused.url.path == f"/jobs/{job_id}"
    assert 'class="notice"' not in client.get(f"/jobs/{job_id}").text  # once only


def test_a_review_decision_is_audited_without_its_note(
    env: Embedded, client: TestClient, job_id: int, users: dict[str, str]
) -> None:
    grant(env, "rita", job_id)
    memo = item_of(env, job_id, "memo.pdf")
    note = "Page 2 quotes the privileged advice of counsel."
    recorded = client.post(
        f"/api/items/{memo.id}/decisions",
        json={"decision": "disagree", "note": note},
        headers=bearer(users["rita"]),
    )
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["decision"] == "disagree"
    item = client.get(f"/api/items/{memo.id}", headers=bearer(users["rita"])).json()
    assert [(d["user"], d["decision"], d["note"]) for d in item["decisions"]] == [
        ("rita", "disagree", note)
    ]
    (event,) = events(env, "review.decided")
    assert event.actor == "rita" and event.item_id == memo.id
    assert event.details["note_sha256"] == hashlib.sha256(note.encode()).hexdigest()
    chain = client.get(f"/api/jobs/{job_id}/audit", headers=bearer(users["aud"]))
    assert chain.status_code == 200 and "privileged advice" not in chain.text
    refused = client.post(
        f"/api/items/{memo.id}/decisions",
        json={"decision": "agree"},
        headers=bearer(users["aud"]),
    )
    assert refused.status_code == 403


def test_old_exports_expire_and_a_previous_server_s_files_are_removed(
    env: Embedded, job_id: int
) -> None:
    folder = env.settings.data_dir / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    leftover = folder / "job9-export1.jsonl"
    leftover.write_text("{}\n")
    registry = ExportRegistry(folder, env.session_factory, max_running=1, keep_s=60)
    assert not leftover.exists()
    exports = [registry.start(job_id, "jsonl", "ada") for _ in range(3)]
    deadline = time.monotonic() + 30
    while any(export.state in ("queued", "running") for export in exports):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [export.state for export in exports] == ["done"] * 3
    written = [export.path for export in exports]
    assert all(path is not None and path.exists() for path in written)
    registry.expire(now=time.monotonic() + 61)
    assert [export.state for export in exports] == ["expired"] * 3
    assert not any(path is not None and path.exists() for path in written)
    assert registry.get(exports[0].id).as_json()["download"] is None


def test_a_series_item_shows_its_assembly_and_a_thumbnail_per_image_shown(
    env: Embedded, client: TestClient, tmp_path: Path, users: dict[str, str]
) -> None:
    study = dicomgen.new_study()
    dicomgen.write_ct_series(tmp_path / "archive" / "ct", study)
    made = submit.submit(
        env.session_factory,
        env.settings,
        paths=[tmp_path / "archive"],
        task=build_task("summarize", {}, env.settings.model.max_text_chars),
        name="archive",
        executor="in_process",
        options=submit.RunOptions(unit="series"),
    )
    embedded.run_item_runs(env.context, made.item_run_ids)
    with env.session_factory() as session:
        item = session.scalars(select(Item).where(Item.job_id == made.job_id)).one()
        shown = item.doc_metadata["shown"]
    sign_in(client, "ada")
    page = client.get(f"/items/{item.id}")
    assert page.status_code == 200
    assert "Series of 14 instance(s)" in page.text
    assert "<h1>series 3 CT (14 instances) " in page.text
    row = re.search(r'<tr class="series-row">(.*?)</tr>', page.text, re.S)
    assert row is not None
    assert "Chest 5mm" in row.group(1) and "CT (CHEST)" in row.group(1)
    assert "12 image(s) every 5.0 mm" in row.group(1) and "1 localizer(s)" in row.group(1)
    assert "1 set aside" in row.group(1)
    strip = re.search(r'<ol class="thumbnails"[^>]*>(.*?)</ol>', page.text, re.S)
    assert strip is not None
    thumbs = re.findall(r'<a href="#([^"]+)"><img src="([^"]+)" alt="([^"]+)"', strip.group(1))
    assert [alt for _anchor, _src, alt in thumbs] == [entry["label"] for entry in shown]
    for anchor, src, _alt in thumbs:
        assert f'id="{anchor}"' in page.text  # each thumbnail leads to its slice
        image = client.get(src)
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    detail = client.get(f"/api/items/{item.id}", headers=bearer(users["ada"])).json()
    assert len(detail["imaging"]["thumbnails"]) == len(shown)
    assert client.get(f"/api/items/{item.id}", headers=bearer(users["aud"])).status_code == 403


def test_on_a_terminal_the_password_is_asked_twice_and_must_match(
    env: Embedded, job_id: int
) -> None:
    """The real ``sieve`` on a pseudo-terminal: hidden input, asked again until it matches."""
    import os
    import pty
    import select as select_module
    import subprocess
    import sys

    sieve_command = Path(sys.executable).parent / "sieve"
    terminal, child_side = pty.openpty()
    # A new session whose controlling terminal is the pty (as a login shell's would be),
    # made by a small launcher, so nothing runs between fork and exec in this process.
    launcher = (
        "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    command = ["users", "add", "kim", "--role", "auditor"]
    child = subprocess.Popen(
        [sys.executable, "-c", launcher, str(sieve_command), *command],
        stdin=child_side,
        stdout=child_side,
        stderr=child_side,
        start_new_session=True,
        env={**os.environ, "SIEVE_DATA_DIR": str(env.settings.data_dir)},
    )
    os.close(child_side)
    seen = b""  # everything the terminal showed
    unread = b""  # what follows the last marker found (the next prompt may already be here)

    def read_until(marker: bytes, timeout_s: float = 120) -> None:
        nonlocal seen, unread
        deadline = time.monotonic() + timeout_s
        while marker not in unread.lower():
            assert time.monotonic() < deadline, f"no {marker!r} in {unread!r}"
            ready, _, _ = select_module.select([terminal], [], [], 1)
            if ready:
                try:
                    chunk = os.read(terminal, 4096)
                except OSError:  # the child closed the terminal
                    break
                seen += chunk
                unread += chunk
        found = unread.lower().find(marker)
        unread = unread[found + len(marker) :] if found >= 0 else b""

    try:
        read_until(b"password")
        os.write(terminal, PASSWORD.encode() + b"\r")
        read_until(b"repeat")
        os.write(terminal, b"not the same password\r")
        read_until(b"do not match")
        read_until(b"password")
        os.write(terminal, PASSWORD.encode() + b"\r")
        read_until(b"repeat")
        os.write(terminal, PASSWORD.encode() + b"\r")
        read_until(b"created")
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
        os.close(terminal)
    assert PASSWORD.encode() not in seen  # hidden: never echoed
    with env.session_factory() as session:
        kim = accounts.verify_password(session, "kim", PASSWORD)
        assert kim is not None and kim.role.value == "auditor"


def test_server_paths_are_taken_only_inside_the_configured_roots(
    env: Embedded, client: TestClient, tmp_path: Path, users: dict[str, str]
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "matter").mkdir(parents=True)
    (inbox / "matter" / "note.txt").write_text("Delivery is due on Friday.\n")
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    (secret / "salaries.txt").write_text("not for the console\n")
    (inbox / "shortcut").symlink_to(secret)
    env.settings.web.submit_roots = [inbox]

    def submit_path(path: Path) -> Any:
        return client.post("/api/jobs", json={"paths": [str(path)]}, headers=bearer(users["ada"]))

    for outside in (
        secret,
        tmp_path / "no-such-folder",
        inbox / "shortcut",
        inbox / ".." / "elsewhere",
    ):
        refused = submit_path(outside)
        assert refused.status_code == 403, outside
        assert refused.json()["code"] == "forbidden"
        assert "outside the folders this server submits from" in refused.json()["detail"]
    inside = submit_path(inbox / "matter")
    assert inside.status_code == 201, inside.text
    assert inside.json()["item_count"] == 1
    uploaded = client.post(  # uploads are not server paths: the roots do not apply
        "/api/jobs/upload",
        files=[("files", ("memo.txt", b"Call me.\n", "text/plain"))],
        headers=bearer(users["ada"]),
    )
    assert uploaded.status_code == 201, uploaded.text


# --- the whole API, fed generated cases --------------------------------------------------

EXAMPLES_PER_OPERATION = 25
# Would lock the generated calls' own account out of the rest of the run.
SKIPPED = {("POST", "/api/users/{name}/disable")}


def test_no_generated_api_call_is_a_server_error(
    env: Embedded, job_id: int, users: dict[str, str], tmp_path: Path
) -> None:
    """Every API operation, fed cases generated from its own OpenAPI schema (Schemathesis).

    Whatever the values (ids past any column's range, odd Unicode in a filter or
    a cursor, NUL bytes in a path, missing or extra fields), the answer is a 2xx or
    a 4xx problem, never a 500. The cases come from a fixed seed, so a run fails
    only when the code changed; server paths are held to an empty folder, so no
    generated path submits anything of this machine's.
    """
    roots = tmp_path / "roots"
    roots.mkdir()
    env.settings.web.submit_roots = [roots]
    app = create_app(
        env.settings,
        env.session_factory,
        run_in_process=lambda ids: embedded.run_item_runs(env.context, ids) and None,
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    server_errors: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        operations += 1

        @given(operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            response = case.call(headers={"Authorization": f"Bearer {users['ada']}"})
            if response.status_code >= 500:
                server_errors.append(
                    f"{case.method} {case.path} {case.path_parameters} {case.query} "
                    f"{str(case.body)[:200]} -> {response.status_code} {response.text[:200]}"
                )

        call()
    assert operations >= 25  # the whole API was walked
    assert not server_errors, "\n".join(server_errors[:10])
