"""Productions: Bates numbering, stamped page images, natives, text, DAT and OPT, the checker.

The matter of ``tests/mattergen.py`` goes through the embedded pipeline with
a privilege task (the stand-in model finds privileged what asks to be kept
"between us"), is produced, and is read back by a parser written here from
the load-file conventions (delimiters by byte value), independent of
``jobs/loadfiles.py``; then ``sieve production check``'s code runs on it and
on copies broken by hand.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pymupdf
import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import select

from db.models import AuditEvent
from jobs import cli, embedded, loadfiles, privilege_log, production, production_check, submit
from jobs.bates import BatesFormat
from tests.fake_model import FakeModel
from tests.mattergen import build_matter
from tests.unit.test_embedded_pipeline import Embedded, make_embedded
from worker import errors
from worker.task_specs import build_task

FIELD_SEPARATOR = b"\x14"
QUOTE = "\u00fe".encode()
NEWLINE_MARK = "\u00ae".encode()


def _privileged_between_us(output: dict[str, Any], content: str) -> dict[str, Any]:
    """Privileged exactly when the document asks to keep it between us."""
    if "privileged" in output:
        output["privileged"] = "between us" in content
        output["basis"] = "attorney_client" if output["privileged"] else "none"
    return output


@pytest.fixture
def reviewed(tmp_path: Path) -> Iterator[tuple[Embedded, int]]:
    for env in make_embedded(tmp_path, FakeModel(rewrite=_privileged_between_us)):
        matter = build_matter(tmp_path / "matter")
        task = build_task("privilege", {}, env.settings.model.max_text_chars)
        made = submit.submit(
            env.session_factory,
            env.settings,
            paths=[matter],
            task=task,
            name="matter",
            executor="in_process",
            options=submit.RunOptions(custodian_folders=True),
        )
        embedded.run_item_runs(env.context, made.item_run_ids)
        yield env, made.job_id


def _produce(env: Embedded, job_id: int, out: Path, **changes: Any) -> production.Production:
    options = production.ProductionOptions(bates=BatesFormat("ABC", 9), **changes)
    with env.session_factory() as session:
        return production.produce(session, env.settings, job_id, out, options)


def parse_dat(path: Path) -> list[dict[str, str]]:
    """The DAT read by byte values: BOM, DC4 between fields, þ around them, ® for newlines."""
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), "a DAT starts with a UTF-8 byte-order mark"
    lines = data[3:].split(b"\r\n")
    assert lines[-1] == b"", "every line ends with CRLF"
    records = []
    for line in lines[:-1]:
        assert b"\n" not in line and b"\r" not in line
        fields = line.split(FIELD_SEPARATOR)
        assert all(f.startswith(QUOTE) and f.endswith(QUOTE) for f in fields)
        records.append(
            [f[len(QUOTE) : -len(QUOTE)].replace(NEWLINE_MARK, b"\n").decode() for f in fields]
        )
    header, *rows = records
    return [dict(zip(header, row, strict=True)) for row in rows]


def _parse_opt(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_production_numbers_every_page_keeps_families_and_writes_both_load_files(
    reviewed: tuple[Embedded, int], tmp_path: Path
) -> None:
    env, job_id = reviewed
    out = tmp_path / "prod"
    made = _produce(env, job_id, out, withhold_privileged=True, review_fields=("privileged",))
    volume = out / "VOL001"
    documents = parse_dat(volume / "DATA" / "VOL001.dat")
    pages = _parse_opt(volume / "DATA" / "VOL001.opt")

    # 16 rows less the mailbox and the ZIP (containers) and the duplicate lunch path.
    assert len(documents) == 13 == len(made.documents)
    # Bates numbers run from ABC000000001 with no gap, page by page, document by document.
    keys = [page[0] for page in pages]
    assert keys == [f"ABC{n:09d}" for n in range(1, len(keys) + 1)]
    expected_next = 1
    for document in documents:
        begin, end = int(document["BEGBATES"][3:]), int(document["ENDBATES"][3:])
        assert begin == expected_next and end >= begin
        assert int(document["PAGE_COUNT"]) == end - begin + 1
        expected_next = end + 1
    # OPT: DocBreak Y exactly on each document's first page, with its page count.
    starts = {page[0]: page for page in pages if page[3] == "Y"}
    assert set(starts) == {document["BEGBATES"] for document in documents}
    for document in documents:
        assert starts[document["BEGBATES"]][6] == document["PAGE_COUNT"]
        assert starts[document["BEGBATES"]][1] == "VOL001"
    assert all(page[6] == "" for page in pages if page[3] != "Y")
    # Every page image is there, one page, stamped with its own number in the lower right.
    for key, _volume, relative, *_rest in pages:
        image = out / Path(*relative.split("\\"))
        assert image.name == f"{key}.pdf"
        with pymupdf.open(image) as single:
            assert single.page_count == 1
            page = single[0]
            lower_right = pymupdf.Rect(page.rect.width / 2, page.rect.height - 40, *page.rect.br)
            assert key in page.get_text(clip=lower_right)
    # Families: the original's attachments (and the ZIP's file) share its attachment range.
    by_path = {document["FILE_PATH"].split("/matter/", 1)[1]: document for document in documents}
    original = by_path["alice/inbox.mbox › message 1: Q3 forecast"]
    family = [d for p, d in by_path.items() if p.startswith("alice/inbox.mbox › message 1:")]
    assert len(family) == 3  # the message, draft.docx and the file inside notes.zip
    assert {(d["BEGATTACH"], d["ENDATTACH"]) for d in family} == {
        (original["BEGBATES"], max(d["ENDBATES"] for d in family))
    }
    assert original["FROM"] == "alice@example.test" and original["SUBJECT"] == "Q3 forecast"
    assert original["CUSTODIAN"] == "alice" and original["THREAD_ID"]
    # The message asking to keep it "between us" is withheld: one slip sheet, no native.
    withheld = by_path["alice/inbox.mbox › message 3: RE: Q3 forecast"]
    assert withheld["WITHHELD"] == "Y" and withheld["PAGE_COUNT"] == "1"
    assert withheld["REVIEW_PRIVILEGED"] == "Y" and withheld["NATIVE_PATH"] == ""
    slip = out / next(p[2] for p in pages if p[0] == withheld["BEGBATES"]).replace("\\", "/")
    with pymupdf.open(slip) as sheet:
        assert "Withheld - privileged" in sheet[0].get_text()
    assert (out / withheld["TEXT_PATH"]).read_text(encoding="utf-8").startswith("Withheld")
    assert sum(d["WITHHELD"] == "Y" for d in documents) == made.withheld >= 1
    # TEXT for every document, named by its first Bates number.
    for document in documents:
        text = out / document["TEXT_PATH"]
        assert text.name == f"{document['BEGBATES']}.txt" and text.is_file()
    lunch = by_path["erin/lunch.eml"]
    assert "Lunch is at noon on Thursday." in (out / lunch["TEXT_PATH"]).read_text()
    assert lunch["ALL_CUSTODIANS"] == "alice; erin"

    report = production_check.check_production(out)
    assert report.ok, report.problems
    assert report.documents == 13 and report.pages == len(pages)
    with env.session_factory() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "production.exported")
        ).one()
    assert event.details["pages"] == len(pages) and event.details["withheld"] == made.withheld


def test_tiff_images_are_black_and_white_group_4(
    reviewed: tuple[Embedded, int], tmp_path: Path
) -> None:
    env, job_id = reviewed
    out = tmp_path / "tiff"
    _produce(env, job_id, out, image_format="tiff", start=1000)
    first = min((out / "VOL001" / "IMAGES" / "0001").glob("*.tif"))
    assert first.name == "ABC000001000.tif"
    with Image.open(first) as image:
        assert image.mode == "1" and image.info.get("compression") == "group4"
    assert production_check.check_production(out).ok


def test_the_checker_catches_a_gap_an_overlap_and_a_broken_path(
    reviewed: tuple[Embedded, int], tmp_path: Path
) -> None:
    env, job_id = reviewed
    good = tmp_path / "good"
    _produce(env, job_id, good)
    dat = good / "VOL001" / "DATA" / "VOL001.dat"
    lines = dat.read_bytes().split(b"\r\n")

    gap = tmp_path / "gap"
    shutil.copytree(good, gap)
    (gap / "VOL001" / "DATA" / "VOL001.dat").write_bytes(b"\r\n".join(lines[:2] + lines[3:]))
    problems = production_check.check_production(gap).problems
    assert any("gap" in problem for problem in problems), problems
    assert any("starts a document the DAT does not have" in problem for problem in problems)

    overlap = tmp_path / "overlap"
    shutil.copytree(good, overlap)
    (overlap / "VOL001" / "DATA" / "VOL001.dat").write_bytes(
        b"\r\n".join([*lines[:3], lines[2], *lines[3:]])
    )
    assert any("overlaps" in p for p in production_check.check_production(overlap).problems)

    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    victim = next((broken / "VOL001" / "IMAGES" / "0001").glob("*.pdf"))
    victim.unlink()
    problems = production_check.check_production(broken).problems
    assert problems == [
        f"OPT: the image of {victim.stem}: VOL001\\IMAGES\\0001\\{victim.name} is not there"
    ]


def test_withholding_needs_a_privilege_run_and_a_production_needs_an_empty_folder(
    tmp_path: Path,
) -> None:
    for env in make_embedded(tmp_path, FakeModel()):
        folder = tmp_path / "in"
        folder.mkdir()
        (folder / "note.txt").write_text("A note.\n")
        made = submit.submit(
            env.session_factory,
            env.settings,
            paths=[folder],
            task=build_task("summarize", {}, 80),
            name="plain",
            executor="in_process",
        )
        embedded.run_item_runs(env.context, made.item_run_ids)
        with pytest.raises(errors.UsageError, match="no privilege run"):
            _produce(env, made.job_id, tmp_path / "out", withhold_privileged=True)
        taken = tmp_path / "taken"
        taken.mkdir()
        (taken / "x").write_text("x")
        with pytest.raises(errors.UsageError, match="not empty"):
            _produce(env, made.job_id, taken)
        _produce(env, made.job_id, tmp_path / "fine")
        assert production_check.check_production(tmp_path / "fine").ok


# --- the privilege log -------------------------------------------------------------------------


def test_the_privilege_log_lists_exactly_what_the_production_withheld(
    reviewed: tuple[Embedded, int], tmp_path: Path
) -> None:
    env, job_id = reviewed
    out = tmp_path / "prod"
    _produce(env, job_id, out, withhold_privileged=True)
    withheld = {
        d["BEGBATES"]: d for d in parse_dat(out / "VOL001" / "DATA" / "VOL001.dat") if d["WITHHELD"]
    }
    with env.session_factory() as session:
        columns, rows = privilege_log.log_rows(
            session, privilege_log.LogRequest(job_id, production_dir=out)
        )
    assert columns == list(privilege_log.STANDARD_COLUMNS)
    assert {row["CONTROL_NUMBER"] for row in rows} == set(withheld)
    # Alice's message asking Bob to keep it between us, and Bob's forward quoting it.
    assert sorted(row["AUTHOR"] for row in rows) == ["alice@example.test", "bob@example.test"]
    row = next(row for row in rows if row["AUTHOR"] == "alice@example.test")
    assert row["TO"] == "bob@example.test"
    assert row["PRIVILEGE_TYPE"] == "attorney_client"
    assert row["BASIS"] == "Attorney-client privilege"
    assert row["DOC_TYPE"] == "E-mail" and row["CUSTODIAN"] == "alice" and row["REDACTED"] == "N"
    assert row["DATE"].startswith("2024-03-01")

    target = tmp_path / "log.xlsx"
    privilege_log.write_log(target, columns, rows)
    sheet = openpyxl.load_workbook(target).active
    assert [cell.value for cell in sheet[1]] == columns
    assert sheet.max_row == 3


def test_metadata_and_categorical_styles_and_confirmed_only(
    reviewed: tuple[Embedded, int], tmp_path: Path
) -> None:
    env, job_id = reviewed
    with env.session_factory() as session:
        metadata_columns, _ = privilege_log.log_rows(
            session, privilege_log.LogRequest(job_id, style="metadata")
        )
        _, categories = privilege_log.log_rows(
            session, privilege_log.LogRequest(job_id, style="categorical")
        )
        _, none_confirmed = privilege_log.log_rows(
            session, privilege_log.LogRequest(job_id, confirmed_only=True)
        )
        _, every = privilege_log.log_rows(session, privilege_log.LogRequest(job_id))
    assert "DESCRIPTION" not in metadata_columns
    assert categories == [
        {
            "PRIVILEGE_TYPE": "attorney_client",
            "BASIS": "Attorney-client privilege",
            "DOC_TYPE": "E-mail",
            "DOCUMENTS": "2",
            "DATE_FROM": "2024-03-01",
            "DATE_TO": "2024-03-02",
            "CUSTODIANS": "alice",
        }
    ]
    assert none_confirmed == []
    assert len(every) == 2
    privileged_item = int(every[0]["CONTROL_NUMBER"].removeprefix("SIEVE-"))
    with env.session_factory() as session:
        assert privilege_log.confirm(session, job_id, [privileged_item], None, "reviewer@host") == 1
        _, confirmed = privilege_log.log_rows(
            session, privilege_log.LogRequest(job_id, confirmed_only=True)
        )
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "review.confirmed")
        ).one()
        with pytest.raises(errors.UsageError, match="no answer"):
            privilege_log.confirm(session, job_id, [99999], None, "reviewer@host")
    assert confirmed == every[:1]
    assert (event.item_id, event.actor, event.details["privileged"]) == (
        privileged_item,
        "reviewer@host",
        True,
    )


def test_the_dat_delimiters_are_the_users_to_choose_and_the_checker_reads_them_back(
    reviewed: tuple[Embedded, int], tmp_path: Path
) -> None:
    env, job_id = reviewed
    out = tmp_path / "prod"
    runner = CliRunner()
    sieve_env = {"SIEVE_DATA_DIR": str(env.settings.data_dir)}
    made = runner.invoke(
        cli.cli,
        [
            *("export", str(job_id), "--format", "production", "--bates-prefix", "ABC"),
            *("--out", str(out), "--withhold-privileged"),
            *("--dat-separator", "124", "--dat-quote", "U+0022", "--dat-newline", "0x7E"),
        ],
        env=sieve_env,
    )
    assert made.exit_code == 0, made.output
    # Read by byte values: | between fields, " around them, ~ for a newline; CRLF ends.
    data = (out / "VOL001" / "DATA" / "VOL001.dat").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and b"\x14" not in data and "þ".encode() not in data
    records = []
    for line in data[3:].split(b"\r\n")[:-1]:
        fields = line.split(b"|")
        assert all(f.startswith(b'"') and f.endswith(b'"') for f in fields)
        records.append([f[1:-1].replace(b"~", b"\n").decode() for f in fields])
    header, *rows = records
    assert header[:2] == ["BEGBATES", "ENDBATES"] and len(rows) == 13
    assert all(len(row) == len(header) for row in rows)

    # The checker and the privilege log read the delimiters from the DAT's header...
    checked = runner.invoke(cli.cli, ["production", "check", str(out)])
    assert checked.exit_code == 0, checked.output
    with env.session_factory() as session:
        _, logged = privilege_log.log_rows(
            session, privilege_log.LogRequest(job_id, production_dir=out)
        )
    withheld = {row[0] for row in rows if row[header.index("WITHHELD")] == "Y"}
    assert {row["CONTROL_NUMBER"] for row in logged} == withheld != set()
    # ...and told the wrong ones, it finds nothing that holds together.
    wrong = runner.invoke(cli.cli, ["production", "check", str(out), "--dat-separator", "0x14"])
    assert wrong.exit_code == 1 and "BEGBATES" in wrong.output
    # A delimiter it cannot read, or two the same, is a usage error that names the option.
    unreadable = runner.invoke(cli.cli, ["production", "check", str(out), "--dat-quote", "xy"])
    assert unreadable.exit_code == 2 and "--dat-quote" in unreadable.output
    same = runner.invoke(
        cli.cli,
        [
            *("export", str(job_id), "--bates-prefix", "ABC", "--out", str(tmp_path / "again")),
            *("--dat-separator", "|", "--dat-quote", "|"),
        ],
        env=sieve_env,
    )
    assert same.exit_code == 2 and "must differ" in same.output
    assert not (tmp_path / "again").exists()


@pytest.mark.parametrize(
    ("written", "character"),
    [
        ("|", "|"),
        (",", ","),
        ("0x14", "\x14"),
        ("U+00FE", "þ"),
        ("u+00ae", "®"),
        ("020", "\x14"),
        ("254", "þ"),
        ("\\x14", "\x14"),
    ],
)
def test_a_delimiter_is_written_the_ways_review_platforms_write_it(
    written: str, character: str
) -> None:
    assert loadfiles.parse_delimiter(written) == character


def test_the_dialect_is_read_from_any_partys_header() -> None:
    ours = loadfiles.dat_bytes(["BEGBATES", "ENDBATES"], [], loadfiles.CONCORDANCE)
    assert loadfiles.detect_dialect(ours) == loadfiles.CONCORDANCE
    csv_like = b'"BEGBATES","ENDBATES"\n"X1","X2"\n'
    dialect = loadfiles.detect_dialect(csv_like)
    assert (dialect.separator, dialect.quote) == (",", '"')
    assert loadfiles.read_dat(csv_like)[1] == [{"BEGBATES": "X1", "ENDBATES": "X2"}]
    bare = b"BEGBATES\tENDBATES\r\nX1\tX2\r\n"
    assert loadfiles.read_dat(bare)[1] == [{"BEGBATES": "X1", "ENDBATES": "X2"}]
    with pytest.raises(errors.UsageError, match="CR and LF"):
        loadfiles.DatDialect(newline="\n")
