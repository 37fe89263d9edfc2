"""The console's API tests again, on the real PostgreSQL.

``tests/unit/test_web_console.py`` runs them on SQLite; here the same tests,
through FastAPI's test client, run against a fresh PostgreSQL database each
(sessions, grants, the audit chain's advisory locks, cursor pages, exports
reading through a second connection). What the items say comes from the fake
model: the model is not under test here, and the real one costs ten seconds a
test; ``test_web.py`` drives the same API and pages through a real worker and
the real model. What a server database hands to workers (submissions, uploads,
re-runs, an unpaused job's items) goes to a stand-in here that takes each item
at once, in this process; the broker and a real worker are ``test_web.py``'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from db import migrate
from db.session import make_engine, make_session_factory
from jobs import commands, embedded
from jobs.settings import Settings
from tests.fake_model import FakeModel
from tests.unit.test_embedded_pipeline import Embedded
from tests.unit.test_web_console import (  # noqa: F401  (fixtures and tests collected here too)
    client,
    job_id,
    test_a_body_past_its_limit_is_refused_before_it_is_spooled,
    test_a_disabled_user_s_session_and_tokens_stop_working,
    test_a_failed_item_is_rerun_from_the_api_and_the_runs_diff,
    test_a_form_post_without_the_csrf_token_is_refused,
    test_a_job_is_submitted_by_upload_and_runs,
    test_a_missing_server_path_is_a_clear_400,
    test_a_notice_is_shown_once_and_cannot_be_put_in_a_link,
    test_a_review_decision_is_audited_without_its_note,
    test_a_reviewer_or_an_auditor_may_not_pause_unpause_or_cancel,
    test_a_session_signs_in_through_the_form_with_a_strict_http_only_cookie,
    test_an_admin_cancels_a_job_from_the_api_and_its_finished_results_are_kept,
    test_an_admin_pauses_a_job_from_the_api_and_unpausing_releases_its_items,
    test_an_artifact_streams_with_its_type_and_honours_ranges,
    test_an_export_is_started_watched_and_downloaded,
    test_an_unauthenticated_call_is_a_401_problem_and_a_page_redirects_to_login,
    test_failed_sign_ins_are_audited_and_then_rate_limited,
    test_items_page_through_a_cursor_and_filter_as_rerun_where,
    test_no_generated_api_call_is_a_server_error,
    test_old_exports_expire_and_a_previous_server_s_files_are_removed,
    test_one_address_trying_many_names_is_refused_and_another_address_is_not,
    test_opening_an_item_writes_an_access_event_in_the_job_chain,
    test_over_https_the_cookie_is_secure_and_hsts_is_sent,
    test_pages_render_for_each_role,
    test_passwords_and_tokens_are_stored_only_as_hashes,
    test_reading_identifiers_is_audited_apart,
    test_roles_and_grants_decide_who_reads_what,
    test_server_paths_are_taken_only_inside_the_configured_roots,
    test_the_sign_in_form_itself_needs_its_token,
    users,
    waiting_job,
)
from worker import dispatch
from worker.config import LimitSettings, ModelSettings
from worker.pipeline import PipelineContext

pytestmark = [pytest.mark.integration]


@pytest.fixture
def env(empty_postgres_url: str, tmp_path: Path) -> Iterator[Embedded]:
    """The unit tests' environment, on a new PostgreSQL database."""
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=empty_postgres_url,
        model=ModelSettings(max_text_chars=80, max_output_tokens=40),
        limits=LimitSettings(sandbox=False),  # extraction is not what these tests are about
    )
    migrate.upgrade(empty_postgres_url)
    engine = make_engine(empty_postgres_url)
    factory = make_session_factory(engine)
    model = FakeModel()
    yield Embedded(
        settings, factory, PipelineContext(settings, factory, model, "web@host:1"), model
    )
    engine.dispose()


class WorkerHere:
    """Stands in for the broker and a worker: each published item run is queued, then taken
    and processed at once, in this process."""

    def __init__(self, env: Embedded) -> None:
        self.env = env

    def publish(
        self, session_factory: sessionmaker[Session], item_run_ids: Sequence[int], actor: str
    ) -> int:
        dispatch.mark_queued(session_factory, item_run_ids, actor)
        embedded.run_item_runs(self.env.context, list(item_run_ids))
        return len(item_run_ids)


@pytest.fixture(autouse=True)
def worker_here(env: Embedded, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the server publishes runs here, not on the shared Redis with no worker behind it."""
    monkeypatch.setattr(commands, "dispatcher", lambda settings: WorkerHere(env))
