"""``sieve audit``: verify the tamper-evident trail and export a chain-of-custody report.

``verify`` exits 0 when every checked chain is intact and 1 when one is
broken, naming the first broken event, so it can run from cron or a
compliance check. ``export`` writes one job's report as JSON (everything) or
CSV (one row per file and run).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click
from rich.console import Console

from jobs import commands, custody

console = Console(stderr=True)


@click.group("audit")
def audit_group() -> None:
    """Verify the audit trail; export chain-of-custody reports."""


@audit_group.command("verify")
@click.argument("job_id", required=False, type=int)
def verify(job_id: int | None) -> None:
    """Recompute the hash chain of JOB_ID (default: every job) and report the first break."""
    engine, session_factory = commands.open_database(commands.load_settings())
    if job_id is not None:
        commands.require_job(session_factory, job_id)
    problems: list[custody.CustodyProblem] = []
    with session_factory() as session:
        if job_id is not None:
            job_ids = [job_id]
        else:
            job_ids = custody.all_job_ids(session)
            problems.extend(custody.verify_global(session))
        for checked in job_ids:
            job_problems = custody.verify_job(session, checked)
            problems.extend(job_problems)
            if not job_problems:
                console.print(f"job {checked}: audit chain intact")
    engine.dispose()
    for problem in problems:
        click.echo(f"BROKEN {problem.describe()}")
    if problems:
        sys.exit(1)
    console.print(f"[green]verified[/] {len(job_ids)} job(s): no broken link")


@audit_group.command("export")
@click.argument("job_id", type=int)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "csv"]),
    default="json",
    show_default=True,
)
@commands.output_option
def export(job_id: int, output_format: str, output: Path | None) -> None:
    """Write JOB_ID's chain-of-custody report: every file, its hashes and its history."""
    engine, session_factory = commands.open_database(commands.load_settings())
    commands.require_job(session_factory, job_id)
    with session_factory() as session:
        report = custody.custody_report(session, job_id)
    engine.dispose()
    handle = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    try:
        if output_format == "json":
            json.dump(report, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        else:
            rows = custody.custody_csv_rows(report)
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["job_id"])
            writer.writeheader()
            writer.writerows(rows)
    finally:
        if output:
            handle.close()
    if output:
        console.print(f"wrote the custody report of job {job_id} to {output}")
    if not report["audit"]["intact"]:
        console.print(
            "[red]warning:[/] the audit chain of this job is broken: "
            + "; ".join(report["audit"]["problems"])
        )
        sys.exit(1)
