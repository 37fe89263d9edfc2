"""``sieve export`` (productions) and ``sieve production check``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from jobs import commands, loadfiles
from jobs.bates import BatesFormat
from worker import errors

# PyMuPDF loads with the production module, only when a command needs it.
IMAGE_FORMATS = ("pdf", "tiff")

console = Console(stderr=True)

Command = TypeVar("Command", bound=Callable[..., Any])

DELIMITER_HELP = "one character, a code point (0x14, U+00FE) or a decimal code (020)"


def _delimiter(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return loadfiles.parse_delimiter(value)
    except errors.UsageError as exc:
        raise click.BadParameter(exc.message) from None


def dat_delimiter_options(defaults: bool) -> Callable[[Command], Command]:
    """``--dat-separator``, ``--dat-quote`` and ``--dat-newline``: Concordance's unless told.

    With ``defaults`` false (the checker) an option left out is read from
    the DAT's own header instead.
    """
    marks = (
        ("--dat-separator", "dat_separator", "0x14", "between fields"),
        ("--dat-quote", "dat_quote", "U+00FE", "around each field"),
        ("--dat-newline", "dat_newline", "U+00AE", "for a newline inside a field"),
    )

    def decorate(command: Command) -> Command:
        for flag, name, default, role in reversed(marks):
            given = default if defaults else None
            shown = f"default {default}" if defaults else "default: read from the header"
            command = click.option(
                flag,
                name,
                default=given,
                callback=_delimiter,
                metavar="CHAR",
                help=f"DAT mark {role}: {DELIMITER_HELP} ({shown}).",
            )(command)
        return command

    return decorate


def dat_dialect(
    separator: str | None, quote: str | None, newline: str | None
) -> loadfiles.DatDialect | None:
    """The dialect the options name, or None to read each DAT's own from its header."""
    if separator is None and quote is None and newline is None:
        return None
    base = loadfiles.CONCORDANCE
    return loadfiles.DatDialect(
        separator=separator or base.separator,
        quote=quote or base.quote,
        newline=newline or base.newline,
    )


@click.command("export")
@click.argument("job_id", type=int)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["production", "privilege-log", "dicom-sr", "fhir", "dicom-deid"]),
    default="production",
    show_default=True,
    help="A Bates-numbered production, the privilege log, DICOM SR objects or FHIR bundles "
    "of the results, or a de-identified copy of the job's DICOM archive.",
)
@click.option("--bates-prefix", help="production: the Bates prefix, e.g. ABC.")
@click.option("--start", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--digits", type=click.IntRange(min=1, max=15), default=9, show_default=True)
@click.option("--separator", default="", help="Between the prefix and the number (default none).")
@click.option("--image", "image_format", type=click.Choice(IMAGE_FORMATS), default="pdf")
@click.option("--volume", default="VOL001", show_default=True)
@click.option("--run", "run_number", type=int, help="production: the run whose results it holds.")
@click.option(
    "--withhold-privileged",
    is_flag=True,
    help="production: slip-sheet what the job's privilege run found privileged.",
)
@click.option("--privilege-run", "privilege_run_number", type=int, help="Which privilege run.")
@click.option("--review-fields", help="production: answer fields for the DAT, comma-separated.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--style",
    type=click.Choice(["standard", "metadata", "categorical"]),
    default="standard",
    show_default=True,
    help="privilege-log: how much each row says.",
)
@click.option(
    "--production",
    "production_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="privilege-log: a production of the job, for its Bates numbers.",
)
@click.option("--confirmed-only", is_flag=True, help="privilege-log: reviewer-confirmed only.")
@click.option(
    "--profile",
    "deid_profile",
    default="basic",
    show_default=True,
    help="dicom-deid: Annex E options, comma-separated: basic, clean-pixel, clean-descriptors, "
    "retain-dates-modified, retain-patient-characteristics, retain-device-identity, "
    "retain-uids, retain-safe-private.",
)
@click.option(
    "--send",
    "destinations",
    multiple=True,
    metavar="NAME",
    help="dicom-sr: also send each report to this configured PACS (repeatable).",
)
@click.option("--output", type=click.Path(path_type=Path, dir_okay=False), help="FILE.csv|.xlsx")
@dat_delimiter_options(defaults=True)
def export(
    job_id: int,
    output_format: str,
    bates_prefix: str | None,
    start: int,
    digits: int,
    separator: str,
    image_format: str,
    volume: str,
    run_number: int | None,
    withhold_privileged: bool,
    privilege_run_number: int | None,
    review_fields: str | None,
    out_dir: Path | None,
    style: str,
    production_dir: Path | None,
    confirmed_only: bool,
    deid_profile: str,
    destinations: tuple[str, ...],
    output: Path | None,
    dat_separator: str,
    dat_quote: str,
    dat_newline: str,
) -> None:
    """Write a Bates-numbered production of JOB_ID with load files, or its privilege log."""
    if output_format == "dicom-deid":
        if out_dir is None:
            raise errors.UsageError("--format dicom-deid needs --out DIR")
        _deidentified_copy(job_id, deid_profile, out_dir)
        return
    if output_format == "fhir":
        if out_dir is None:
            raise errors.UsageError("--format fhir needs --out DIR")
        _fhir_bundles(job_id, run_number, out_dir)
        return
    if output_format == "dicom-sr":
        if out_dir is None:
            raise errors.UsageError("--format dicom-sr needs --out DIR")
        _dicom_reports(job_id, run_number, out_dir, destinations)
        return
    if output_format == "privilege-log":
        if output is None:
            raise errors.UsageError("--format privilege-log needs --output FILE.csv|FILE.xlsx")
        _privilege_log(job_id, style, privilege_run_number, production_dir, confirmed_only, output)
        return
    if not bates_prefix or out_dir is None:
        raise errors.UsageError("--format production needs --bates-prefix and --out")
    from jobs import production, production_check

    settings = commands.load_settings()
    dialect = loadfiles.DatDialect(dat_separator, dat_quote, dat_newline)
    options = production.ProductionOptions(
        bates=BatesFormat(bates_prefix, digits, separator),
        start=start,
        image_format=image_format,
        volume=volume,
        run_number=run_number,
        withhold_privileged=withhold_privileged,
        privilege_run_number=privilege_run_number,
        review_fields=tuple(f.strip() for f in (review_fields or "").split(",") if f.strip()),
        dialect=dialect,
    )
    with commands.job_session(settings, job_id) as session, console.status("producing…"):
        made = production.produce(session, settings, job_id, out_dir, options)
    documents = made.documents
    span = f"{documents[0].begin}–{documents[-1].end}" if documents else "nothing"
    console.print(
        f"produced {len(documents)} documents, {made.pages} pages ({span}); "
        f"{made.withheld} withheld, {made.natives} natives → {out_dir / made.volume}"
    )
    report = production_check.check_production(out_dir, dialect)
    console.print(f"check: {report.summary()}")
    for problem in report.problems:
        console.print(f"  {problem}")
    sys.exit(commands.EXIT_OK if report.ok else commands.EXIT_ITEMS_FAILED)


def _deidentified_copy(job_id: int, profile_text: str, out_dir: Path) -> None:
    from jobs import deid_export, submit
    from worker.imaging.deid_profile import Profile

    try:
        profile = Profile.parse(profile_text)
    except ValueError as exc:
        raise errors.UsageError(str(exc)) from None
    settings = commands.load_settings()
    with commands.job_session(settings, job_id) as session, console.status("de-identifying…"):
        made = deid_export.export(
            session, settings, job_id, out_dir, profile, submit.submitter_identity()
        )
    console.print(
        f"de-identified {len(made.files)} instances of {len(made.studies)} studies "
        f"({', '.join(profile.options)}) → {out_dir}"
    )
    if made.pixel_reviews:
        console.print(
            f"[yellow]{len(made.pixel_reviews)} burned-in text region(s) not matched to an "
            "identifier: review them (BurnedInAnnotation stays YES on those instances)[/]"
        )
        for entry in made.pixel_reviews[:20]:
            console.print(
                f"  {entry['sop_instance_uid']} frame {entry['frame']}: {entry['text']!r}"
            )
    for failure in made.failed:
        console.print(
            f"[red]not copied[/] {failure['path']}: {failure['error_code']}: {failure['error']}"
        )
    sys.exit(commands.EXIT_ITEMS_FAILED if made.failed else commands.EXIT_OK)


def _fhir_bundles(job_id: int, run_number: int | None, out_dir: Path) -> None:
    from jobs import fhir_export, submit

    settings = commands.load_settings()
    with commands.job_session(settings, job_id) as session:
        written = fhir_export.write_bundles(
            session, job_id, out_dir, run_number, submit.submitter_identity()
        )
    console.print(
        f"wrote {len(written)} FHIR bundles (DiagnosticReport + Observations) → {out_dir}"
    )


def _dicom_reports(
    job_id: int, run_number: int | None, out_dir: Path, destinations: tuple[str, ...]
) -> None:
    from jobs import dicom_send, dicom_sr, submit

    settings = commands.load_settings()
    for name in destinations:
        dicom_send.destination(settings, name)  # an unknown name fails before anything is written
    actor = submit.submitter_identity()
    failed = 0
    with commands.job_session(settings, job_id) as session:
        with console.status("writing structured reports…"):
            written = dicom_sr.write_reports(session, settings, job_id, out_dir, run_number, actor)
        studies = len({report.study_instance_uid for report in written})
        references = sum(report.referenced for report in written)
        console.print(
            f"wrote {len(written)} Comprehensive SR objects (TID 1500) for {studies} "
            f"studies, referencing {references} instances → {out_dir}"
        )
        for name in destinations:
            with console.status(f"sending to {name}…"):
                outcomes = dicom_send.send_objects(
                    session, settings, name, [w.path for w in written], job_id, actor
                )
            for outcome in outcomes:
                mark = "sent" if outcome.sent else "NOT SENT"
                click.echo(f"{name}\t{outcome.sop_instance_uid}\t{mark}\t{outcome.detail}")
            failed += sum(1 for outcome in outcomes if not outcome.sent)
    sys.exit(commands.EXIT_ITEMS_FAILED if failed else commands.EXIT_OK)


def _privilege_log(
    job_id: int,
    style: str,
    privilege_run_number: int | None,
    production_dir: Path | None,
    confirmed_only: bool,
    output: Path,
) -> None:
    from jobs import privilege_log

    request = privilege_log.LogRequest(
        job_id, style, privilege_run_number, production_dir, confirmed_only
    )
    with commands.job_session(commands.load_settings(), job_id) as session:
        columns, rows = privilege_log.log_rows(session, request)
    privilege_log.write_log(output, columns, rows)
    console.print(f"wrote {len(rows)} privilege log rows ({style}) to {output}")


@click.group("review")
def review_group() -> None:
    """A reviewer's decisions on the model's answers (each an audit event)."""


@review_group.command("confirm")
@click.argument("job_id", type=int)
@click.argument("item_ids", type=int, nargs=-1, required=True)
@click.option("--run", "run_number", type=int, help="The privilege run (default: the latest).")
def confirm(job_id: int, item_ids: tuple[int, ...], run_number: int | None) -> None:
    """Confirm the privilege run's answers for ITEM_IDS (for --confirmed-only logs)."""
    from jobs import privilege_log
    from jobs.submit import submitter_identity

    with commands.job_session(commands.load_settings(), job_id) as session:
        count = privilege_log.confirm(
            session, job_id, list(item_ids), run_number, submitter_identity()
        )
    console.print(f"confirmed {count} answer(s) of job {job_id}")


@click.group("production")
def production_group() -> None:
    """Productions: check one, ours or another party's."""


@production_group.command("check")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@dat_delimiter_options(defaults=False)
def check(
    directory: Path, dat_separator: str | None, dat_quote: str | None, dat_newline: str | None
) -> None:
    """Check a production's load files, Bates numbers and paths; exit 1 on any problem."""
    from jobs import production_check

    dialect = dat_dialect(dat_separator, dat_quote, dat_newline)
    report = production_check.check_production(directory, dialect)
    for problem in report.problems:
        click.echo(problem)
    click.echo(f"check: {report.summary()}", err=True)
    sys.exit(commands.EXIT_OK if report.ok else commands.EXIT_ITEMS_FAILED)
