"""The bench's rows say "better" the same way whatever their unit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import bookkeeping_rows
from bench.__main__ import bare_frame_command
from bench.memory_rows import memory_windows, rss_profile_mib
from bench.rows import Row
from worker import ffmpeg_tools
from worker.config import MediaSettings, WorkerConfig
from worker.extractors import video as video_extractor


def test_a_ratio_above_one_means_sieve_is_better_either_way() -> None:
    assert Row("faster", 10.0, 5.0, "pages/s").ratio == 2.0
    assert Row("fewer", 5.0, 10.0, "tok/item", higher_is_better=False).ratio == 2.0
    assert Row("slower", 5.0, 10.0, "pages/s").ratio == 0.5


def test_a_row_without_a_measurement_has_no_ratio() -> None:
    assert math.isnan(Row("none", 0.0, 5.0, "pages/s").ratio)
    assert set(Row("x", 1.0, 2.0, "u").as_json()) == {
        "name",
        "sieve",
        "baseline",
        "unit",
        "ratio",
        "notes",
    }


# --- worker_memory: the window arithmetic ---------------------------------------------

MIB = 1024 * 1024


def test_memory_is_compared_over_the_first_and_last_fifth_of_the_items() -> None:
    samples = [100 * MIB] * 100 + [150 * MIB] * 300 + [110 * MIB] * 100

    windows = memory_windows(samples)

    assert windows.window_items == 100
    assert windows.first_mib == 100.0
    assert windows.last_mib == 110.0
    assert math.isclose(windows.growth_percent, 10.0)
    assert not windows.flat


def test_memory_within_five_percent_either_way_is_flat() -> None:
    assert memory_windows([200 * MIB] * 30 + [210 * MIB] * 120).flat  # last 30 at +5 %
    assert memory_windows([200 * MIB] * 150).growth_percent == 0.0
    assert memory_windows([200 * MIB] * 120 + [189 * MIB] * 30).flat is False  # -5.5 %


def test_a_short_run_still_has_one_item_per_window() -> None:
    assert memory_windows([MIB, 2 * MIB]).window_items == 1
    assert memory_windows([MIB]).growth_percent == 0.0
    with pytest.raises(ValueError):
        memory_windows([])


def test_the_rss_profile_samples_evenly_from_the_first_item_to_the_last() -> None:
    samples = [n * MIB for n in range(101)]  # 0 … 100 MiB

    assert rss_profile_mib(samples) == [0.0, 25.0, 50.0, 75.0, 100.0]
    assert rss_profile_mib([MIB, 2 * MIB]) == [1.0, 2.0]
    assert rss_profile_mib([]) == []


# --- bookkeeping ---------------------------------------------------------------------


def test_bookkeeping_rows_are_named_by_worker_count_and_count_cost() -> None:
    assert bookkeeping_rows.row_name(1) == "bookkeeping_1_worker"
    assert bookkeeping_rows.row_name(2) == "bookkeeping_2_workers"
    assert bookkeeping_rows.ms_per_item(0.5, 200) == 2.5


def test_database_retries_are_counted_from_the_workers_warnings() -> None:
    log = "\n".join(
        [
            "[…: WARNING/ForkPoolWorker-2] item run 2: the database cannot be used now: "
            "OperationalError: deadlock detected",
            "DETAIL:  Process 12353 waits for ExclusiveLock on advisory lock",
            "HINT:  See server log for query details.; retrying",
            "[…: INFO/ForkPoolWorker-2] Task sieve.process_item[4b3b] retry: Retry in 5.0s",
            "[…: WARNING/ForkPoolWorker-1] item run 8: lost the connection; retrying",
        ]
    )

    assert bookkeeping_rows.database_retries(log) == 2


def test_the_median_task_time_is_read_from_celerys_success_lines() -> None:
    log = "\n".join(
        f"[…: INFO/ForkPoolWorker-1] Task sieve.process_item[{n}] succeeded in {s}s: 'done'"
        for n, s in enumerate(["0.040", "0.050", "5.2"])
    )

    assert bookkeeping_rows.median_task_ms(log) == 50.0
    assert math.isnan(bookkeeping_rows.median_task_ms("no task ran"))


def test_a_bookkeeping_row_without_services_is_nan_and_says_why() -> None:
    row = bookkeeping_rows.skipped_row(2, "redis unreachable (ConnectionError)")

    assert math.isnan(row.sieve) and math.isnan(row.baseline) and math.isnan(row.ratio)
    assert row.notes == {"skipped": "redis unreachable (ConnectionError)"}
    assert not row.higher_is_better


def test_an_unreachable_redis_is_named_before_postgres_is_tried() -> None:
    # Port 1 on the loopback: nothing listens, so the connection is refused at once.
    reason = bookkeeping_rows.unreachable_services(
        "redis://127.0.0.1:1/0", "postgresql+psycopg://postgres@127.0.0.1:1/postgres"
    )

    assert reason is not None and reason.startswith("redis unreachable")


def test_the_bookkeeping_worker_gets_the_rows_services_queue_and_no_sandbox(
    tmp_path: Path,
) -> None:
    config = WorkerConfig(
        data_dir=tmp_path,
        database_url="postgresql+psycopg://postgres@127.0.0.1:5432/sieve_bench_x",
        worker={"queue": "sieve-test-abc", "sweep_interval_s": 0.0},
        limits={"sandbox": False},
    )

    environment = bookkeeping_rows.worker_environment(config)

    assert environment["SIEVE_DATABASE_URL"] == config.database_url
    assert environment["SIEVE_WORKER__QUEUE"] == "sieve-test-abc"
    assert environment["SIEVE_WORKER__SWEEP_INTERVAL_S"] == "0.0"
    assert environment["SIEVE_LIMITS__SANDBOX"] == "false"
    assert environment["SIEVE_DATA_DIR"] == str(tmp_path)


# --- video: the baseline samples as Sieve does ------------------------------------------


def test_the_bare_ffmpeg_baseline_uses_sieves_sampling(tmp_path: Path) -> None:
    sampling = video_extractor.frame_sampling(60.0, MediaSettings())

    command = bare_frame_command("ffmpeg", tmp_path / "clip.mp4", tmp_path, sampling)

    filters = command[command.index("-vf") + 1]
    assert f"min({MediaSettings().frame_max_width},iw)" in filters
    assert ffmpeg_tools._frame_select_expression(sampling) in filters
    assert command[command.index("-frames:v") + 1] == str(sampling.max_frames)
    assert command[-1].startswith(str(tmp_path)) and command[-1].endswith(".png")
