"""``sieve pacs`` (a study pulled from a PACS) and ``sieve deid`` (the audited mapping)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from jobs import commands

console = Console(stderr=True)


@click.group("pacs")
def pacs_group() -> None:
    """PACS: pull studies over DICOMweb (destinations in SIEVE_PACS__DESTINATIONS)."""


@pacs_group.command("studies")
@click.argument("source")
@click.option("--date", help="StudyDate: YYYYMMDD, or a range YYYYMMDD-YYYYMMDD")
@click.option("--modality", help="a modality in the study, e.g. CT")
@click.option("--accession", help="the accession number")
@click.option("--study-uid", help="one Study Instance UID")
@click.option("--limit", type=click.IntRange(1, 10_000), default=200, show_default=True)
def studies(
    source: str,
    date: str | None,
    modality: str | None,
    accession: str | None,
    study_uid: str | None,
    limit: int,
) -> None:
    """List the studies SOURCE holds (QIDO-RS): UID, date, modalities, counts, description.

    One study a line, tab-separated, UID first (for sieve pacs pull); no
    patient identifiers are shown. The search is recorded in the audit trail.
    """
    from jobs import dicom_pull, submit

    searched = {"date": date, "modality": modality, "accession": accession, "study_uid": study_uid}
    filters = {key: value for key, value in searched.items() if value}
    settings = commands.load_settings()
    engine, session_factory = commands.open_database(settings)
    try:
        with session_factory() as session:
            found = dicom_pull.find_studies(
                session, settings, source, filters, submit.submitter_identity(), limit
            )
    finally:
        engine.dispose()
    for study in found:
        counts = f"{study.series_count or '?'} series, {study.instance_count or '?'} instances"
        modalities = "/".join(study.modalities)
        click.echo(
            f"{study.study_instance_uid}\t{study.study_date}\t{modalities}\t{counts}"
            f"\t{study.description}"
        )
    console.print(f"{len(found)} studies on {source}")


@pacs_group.command("pull")
@click.argument("source")
@click.argument("study_uids", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False))
def pull(source: str, study_uids: tuple[str, ...], out_dir: Path) -> None:
    """Retrieve every instance of STUDY_UIDS from SOURCE into --out, ready for sieve submit."""
    from jobs import dicom_pull, submit

    settings = commands.load_settings()
    engine, session_factory = commands.open_database(settings)
    try:
        with session_factory() as session, console.status(f"pulling from {source}…") as status:
            pulled = dicom_pull.pull_studies(
                session,
                settings,
                source,
                list(study_uids),
                out_dir,
                submit.submitter_identity(),
                progress=lambda path: status.update(f"pulling from {source}: {path.name}"),
            )
    finally:
        engine.dispose()
    for study in pulled:
        console.print(f"{study.study_instance_uid}: {len(study.files)} instances")
    click.echo(str(out_dir))


@click.group("deid")
def deid_group() -> None:
    """De-identification: the mapping from originals to replacements (every read audited)."""


@deid_group.command("mapping")
@click.argument("job_id", type=int)
@click.option("--kind", type=click.Choice(["uid", "patient", "date_offset"]))
def mapping(job_id: int, kind: str | None) -> None:
    """Print JOB_ID's de-identification mapping as tab-separated rows (an audited read)."""
    from jobs import deid_export, submit

    settings = commands.load_settings()
    with commands.job_session(settings, job_id) as session:
        rows = deid_export.read_mapping(session, job_id, submit.submitter_identity(), kind)
        for row in rows:
            click.echo(f"{row.kind}\t{row.original}\t{row.replacement}")
    console.print(f"{len(rows)} mapping rows (this read is recorded in the audit trail)")
