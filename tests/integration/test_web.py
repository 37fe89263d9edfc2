"""The console and API for real: ``sieve serve`` on PostgreSQL, a Celery worker, Chromium.

Accounts are made with the real ``sieve users`` and ``sieve tokens`` commands.
The API is driven over HTTP; the pages in Debian's headless Chromium through
Playwright (its browser download is never used). The browser signs in,
submits a job, watches it finish with the real worker and model, opens an
item and sees its page image and answer, follows a citation, re-runs the
failed item, compares the two runs, and is refused where its role forbids.
Screenshots go to ``docs/screenshots`` when ``SIEVE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import axe_playwright_python
import httpx
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.models import AuditEvent
from tests import dicomgen, pdfgen
from tests.integration.harness import SIEVE, WorkerProcess, run_sieve, wait_for_run, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.model]

PASSWORD = "a long enough password"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
REPOSITORY = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPOSITORY / "docs" / "screenshots"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def accounts(sieve_env: dict[str, str]) -> dict[str, str]:
    """admin, reviewer and auditor made by the CLI; name -> bearer token."""
    tokens: dict[str, str] = {}
    for name, role in (("web-admin", "admin"), ("web-rev", "reviewer"), ("web-aud", "auditor")):
        added = subprocess.run(
            [SIEVE, "users", "add", name, "--role", role],
            input=PASSWORD + "\n",
            env=sieve_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        made = run_sieve(["tokens", "create", name, "--label", "test"], sieve_env, timeout=60)
        assert made.returncode == 0, made.stderr
        tokens[name] = made.stdout.strip().splitlines()[-1]
    short = subprocess.run(
        [SIEVE, "users", "add", "weak", "--role", "reviewer"],
        input="short\n",
        env=sieve_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    return tokens


@pytest.fixture(scope="module")
def server(sieve_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sieve serve`` on a free loopback port; its base URL."""
    port = free_port()
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    process = subprocess.Popen(
        [SIEVE, "serve", "--port", str(port)], env=sieve_env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/login", timeout=2).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None

    wait_until(up, 60, "sieve serve to answer")
    assert process.poll() is None, Path(log.name).read_text()
    yield base
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def matter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("web-matter")
    pdfgen.make_text_pdf(folder / "memo.pdf", pdfgen.MEMO_PAGES, title="Memo")
    picture = Image.new("RGB", (480, 160), "white")
    ImageDraw.Draw(picture).text((20, 60), "INVOICE 42  TOTAL 1,200 EUR", fill="black")
    picture.save(folder / "invoice.png")
    pdfgen.make_corrupt_pdf(folder / "corrupt.pdf")
    return folder


@pytest.fixture
def clients(server: str, accounts: dict[str, str]) -> Iterator[dict[str, httpx.Client]]:
    """An API client per account, each with its bearer token."""
    made = {
        name: httpx.Client(
            base_url=server, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        for name, token in accounts.items()
    }
    yield made
    for client in made.values():
        client.close()


def test_the_api_on_postgres_enforces_roles_and_logs_access(
    server: str,
    clients: dict[str, httpx.Client],
    matter: Path,
    celery_worker: WorkerProcess,
    database_url: str,
    db_engine: Engine,
    sieve_env: dict[str, str],
) -> None:
    admin, reviewer, auditor = (clients[name] for name in ("web-admin", "web-rev", "web-aud"))
    assert httpx.get(f"{server}/api/jobs").status_code == 401
    made = admin.post("/api/jobs", json={"paths": [str(matter)], "name": "api matter"})
    assert made.status_code == 201, made.text
    job_id = made.json()["job_id"]
    wait_for_run(database_url, job_id, timeout=300)
    job = admin.get(f"/api/jobs/{job_id}").json()
    assert job["submitted_by"] == "web-admin"
    assert job["run"]["counts"] == {"done": 2, "failed": 1}
    assert job["failures_by_code"] == {"corrupt_file": 1}
    items = admin.get(f"/api/jobs/{job_id}/items", params={"where": "path ~ '*memo.pdf'"}).json()
    memo_id = items["items"][0]["id"]

    denied = reviewer.get(f"/api/items/{memo_id}")
    assert denied.status_code == 403
    assert denied.headers["content-type"].startswith("application/problem+json")
    assert admin.post("/api/users/web-rev/grants", json={"job_id": job_id}).status_code == 201
    detail = reviewer.get(f"/api/items/{memo_id}").json()
    assert detail["runs"][0]["result"]["output"]["summary"]
    assert auditor.get(f"/api/items/{memo_id}").status_code == 403
    assert reviewer.post(f"/api/jobs/{job_id}/cancel").status_code == 403

    with Session(db_engine) as session:
        viewed = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "content.viewed", AuditEvent.item_id == memo_id
            )
        ).all()
    assert [event.actor for event in viewed] == ["web-rev"]
    verified = auditor.get(f"/api/jobs/{job_id}/audit/verify").json()
    assert verified["verified"] is True
    custody = run_sieve(["audit", "export", str(job_id)], sieve_env)
    assert custody.returncode == 0 and "content.viewed" in custody.stdout


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


def shoot(page: Page, name: str, tmp_path: Path) -> None:
    target = tmp_path / f"{name}.png"
    page.screenshot(path=str(target), full_page=False)
    if os.environ.get("SIEVE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, SCREENSHOTS / target.name)


def assert_accessible(page: Page) -> None:
    """axe-core (Deque's WCAG rules engine) finds nothing serious or critical on the page."""
    engine = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
    # evaluate() runs through the DevTools protocol, not as a page script, so the
    # console's Content-Security-Policy (no inline scripts) stays on.
    found = page.evaluate(engine + "\n;axe.run(document, {resultTypes: ['violations']})")
    problems = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} "
        f"at {[node['target'] for node in violation['nodes']][:3]}"
        for violation in found["violations"]
        if violation["impact"] in ("serious", "critical")
    ]
    assert not problems, f"{page.url}: " + "; ".join(problems)


def sign_in(browser: Browser, server: str, name: str) -> Page:
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()
    page.goto(f"{server}/")
    assert "/login" in page.url
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server}/")
    return page


def test_a_reviewer_s_day_in_a_real_browser(
    server: str,
    accounts: dict[str, str],
    matter: Path,
    celery_worker: WorkerProcess,
    browser: Browser,
    database_url: str,
    db_engine: Engine,
    tmp_path: Path,
) -> None:
    page = sign_in(browser, server, "web-admin")
    # Submit a job from the form and watch it finish on the job page.
    page.get_by_role("link", name="Submit", exact=True).click()
    page.get_by_label("Files or folders, one per line").fill(str(matter))
    page.locator("#paths-name").fill("browser matter")
    page.get_by_role("button", name="Submit", exact=True).click()
    page.wait_for_url(re.compile(r"/jobs/\d+"))
    found = re.search(r"/jobs/(\d+)", page.url)
    assert found is not None
    job_id = int(found.group(1))
    page.locator(".run-state", has_text="completed").wait_for(timeout=300_000)
    page.reload()
    assert "corrupt_file" in page.inner_text("main")
    shoot(page, "job", tmp_path)
    assert_accessible(page)

    # Open the scanned invoice: its page image loads beside the model's answer.
    invoice_link = page.locator("tr", has_text="invoice.png").get_by_role("link").first
    invoice_link.click()
    image = page.locator("img.artifact").first
    image.wait_for()
    assert page.evaluate("img => img.complete && img.naturalWidth > 0", image.element_handle())
    assert page.locator("pre.answer").first.inner_text().strip().startswith("{")
    shoot(page, "item", tmp_path)
    assert_accessible(page)

    # Follow a citation of the memo's answer to the page it cites.
    page.go_back()
    page.locator("tr", has_text="memo.pdf").get_by_role("link").first.click()
    citation = page.locator("a.citation").first
    target = citation.get_attribute("href")
    citation.click()
    page.wait_for_function("anchor => location.hash === anchor", arg=target)
    assert page.locator(f"{target}:target").count() == 1
    page.get_by_label("Agree", exact=True).check()
    page.get_by_role("button", name="Record").click()
    page.get_by_text("decision recorded: agree").wait_for()

    # Re-run the failed item, then compare the two runs.
    page.goto(f"{server}/jobs/{job_id}")
    page.get_by_role("button", name=re.compile("Re-run the 1 item")).click()
    page.get_by_text("run 2 queued with 1 item(s)").wait_for()
    wait_for_run(database_url, job_id, timeout=300)
    page.reload()
    page.get_by_role("link", name="run 1 → 2").click()
    page.wait_for_url(re.compile(r"/diff\?a=1&b=2"))
    assert page.locator('[data-status="only_in_a"]').inner_text() == "2"
    shoot(page, "diff", tmp_path)
    assert_accessible(page)

    # A reviewer without a grant is refused; with one, her reading is in the access log.
    reviewer = sign_in(browser, server, "web-rev")
    response = reviewer.goto(f"{server}/jobs/{job_id}")
    assert response.status == 403
    assert "no grant" in reviewer.inner_text("main")
    page.goto(f"{server}/users")
    page.get_by_label("Job id for web-rev").fill(str(job_id))
    page.locator("form[action='/users/web-rev/grant'] button").click()
    page.get_by_text(f"web-rev may read job {job_id}").wait_for()
    reviewer.goto(f"{server}/jobs/{job_id}")
    reviewer.locator("tr", has_text="memo.pdf").get_by_role("link").first.click()
    reviewer.get_by_role("heading", name="What the model said").wait_for()
    assert reviewer.get_by_role("link", name="Submit", exact=True).count() == 0
    forbidden = reviewer.goto(f"{server}/users")
    assert forbidden.status == 403

    auditor = sign_in(browser, server, "web-aud")
    auditor.goto(f"{server}/jobs/{job_id}/audit")
    assert auditor.locator("[data-verified='true']").count() == 1
    assert auditor.locator("tr.access-event", has_text="web-rev").count() >= 1
    shoot(auditor, "audit", tmp_path)
    assert_accessible(auditor)
    assert celery_worker.process.poll() is None
    page.goto(f"{server}/")
    shoot(page, "jobs", tmp_path)
    assert_accessible(page)

    # Files uploaded from the form (in a second tab) run, and the open job list shows
    # the new job and its progress without a reload.
    upload = tmp_path / "upload" / "shipment note.txt"
    upload.parent.mkdir()
    upload.write_text("The shipment left the Rotterdam depot on Monday 3 March.\n")
    uploader = page.context.new_page()
    uploader.goto(f"{server}/submit")
    uploader.get_by_label("Files", exact=True).set_input_files(str(upload))
    uploader.get_by_role("button", name="Upload and submit").click()
    uploader.wait_for_url(re.compile(r"/jobs/\d+"))
    uploaded = re.search(r"/jobs/(\d+)", uploader.url)
    assert uploaded is not None
    new_row = page.locator(f'tr[data-job="{uploaded.group(1)}"]')
    new_row.wait_for(timeout=30_000)
    new_row.locator(".run-state", has_text="completed").wait_for(timeout=300_000)
    assert new_row.get_by_role("link").get_attribute("href") == f"/jobs/{uploaded.group(1)}"
    uploader.goto(f"{server}/jobs/{uploaded.group(1)}/items")
    assert "upload/shipment note.txt" in uploader.inner_text("main")
    page.goto(f"{server}/users")
    assert_accessible(page)
    page.goto(f"{server}/submit")
    assert_accessible(page)


def test_a_ct_series_in_the_browser_shows_its_slices_as_thumbnails(
    server: str,
    clients: dict[str, httpx.Client],
    celery_worker: WorkerProcess,
    browser: Browser,
    database_url: str,
    tmp_path: Path,
) -> None:
    archive = tmp_path / "archive"
    dicomgen.write_ct_series(archive / "ct", dicomgen.new_study())
    admin = clients["web-admin"]
    made = admin.post("/api/jobs", json={"paths": [str(archive)], "name": "ct archive"})
    assert made.status_code == 201, made.text
    job_id = made.json()["job_id"]
    wait_for_run(database_url, job_id, timeout=300)
    (item,) = admin.get(f"/api/jobs/{job_id}/items").json()["items"]

    page = sign_in(browser, server, "web-admin")
    page.goto(f"{server}/items/{item['id']}")
    thumbnails = page.locator("ol.thumbnails img")
    assert thumbnails.count() == 8  # the sampling policy's eight slices of twelve
    page.wait_for_function(
        "() => [...document.querySelectorAll('ol.thumbnails img')]"
        ".every(img => img.complete && img.naturalWidth === 64)"
    )
    assert "12 image(s) every 5.0 mm" in page.locator("tr.series-row").inner_text()
    last = page.locator("ol.thumbnails a").last
    target = last.get_attribute("href")
    last.click()
    page.wait_for_function("anchor => location.hash === anchor", arg=target)
    assert page.locator(f"{target}:target").count() == 1
    # By keyboard alone: the skip link comes first, and a thumbnail opens its slice with Enter.
    page.goto(f"{server}/items/{item['id']}")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.wait_for_function("() => location.hash === '#main'")  # a fragment moves on its own time
    first = page.locator("ol.thumbnails a").first
    anchor = first.get_attribute("href")
    first.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("anchor => location.hash === anchor", arg=anchor)
    assert page.locator(f"{anchor}:target").count() == 1
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "series", tmp_path)
    assert_accessible(page)
    assert celery_worker.process.poll() is None
