"""What the ZIP extractor extracts, refuses and raises."""

from __future__ import annotations

import hashlib
import os
import struct
import zipfile
from pathlib import Path

import pytest

from tests import pdfgen, zipgen
from worker import errors
from worker.config import LimitSettings
from worker.extractors.archive import RefusalReason, ZipExtractor
from worker.extractors.base import ChildRole, Extraction
from worker.extractors.registry import extractor_for

NOTES = "Minutes of the harbour committee, 4 April 2024. The new pontoon opens in May.\n"


@pytest.fixture
def limits() -> LimitSettings:
    return LimitSettings()


@pytest.fixture
def artifacts_dir(tmp_path: Path) -> Path:
    # Deliberately not created: the extractor makes what it needs.
    return tmp_path / "artifacts" / "abc123"


def extract(source: Path, artifacts_dir: Path, limits: LimitSettings) -> Extraction:
    return ZipExtractor().extract(source, artifacts_dir, limits)


def paths_under(root: Path) -> set[Path]:
    """Every file, folder and link under ``root``, links not followed."""
    found: set[Path] = set()
    for folder, subfolders, files in os.walk(root, followlinks=False):
        found.update(Path(folder, name) for name in subfolders + files)
    return found


def states(extraction: Extraction) -> dict[str, str]:
    return {member["path"]: member["state"] for member in extraction.metadata["members"]}


def refusal_reasons(extraction: Extraction) -> dict[str, str]:
    return {refused["member"]: refused["reason"] for refused in extraction.metadata["refused"]}


def words(count: int, seed: int) -> str:
    """Text that deflate cannot shrink much: a report of ``count`` varied words."""
    return pdfgen.report_page_text(seed, count)


# --- registration -----------------------------------------------------------------


def test_the_zip_extractor_is_registered_for_application_zip() -> None:
    assert isinstance(extractor_for("application/zip"), ZipExtractor)
    assert ZipExtractor.name == "zip"


# --- members that can be read -------------------------------------------------------


def children_of(extraction: Extraction, artifacts_dir: Path) -> dict[str, bytes]:
    """Each child's name and the bytes written for it."""
    return {
        child.name: (artifacts_dir / child.artifact_path).read_bytes()
        for child in extraction.children
    }


def test_each_member_becomes_a_child_named_by_its_path_and_the_zip_a_container(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    pdf = pdfgen.make_mixed_pdf(tmp_path / "mixed.pdf")
    source = zipgen.make_zip(
        tmp_path / "bundle.zip", [("reports/q1.pdf", pdf.read_bytes()), ("notes.txt", NOTES)]
    )

    extraction = extract(source, artifacts_dir, limits)

    assert extraction.extractor == "zip/2"
    assert extraction.media_type == "application/zip"
    assert extraction.container is True
    assert extraction.segments == []
    assert [(c.name, c.ordinal, c.role) for c in extraction.children] == [
        ("reports/q1.pdf", 1, ChildRole.member),
        ("notes.txt", 2, ChildRole.member),
    ]
    assert children_of(extraction, artifacts_dir) == {
        "reports/q1.pdf": pdf.read_bytes(),
        "notes.txt": NOTES.encode(),
    }
    assert extraction.metadata["files"] == {"expected": 2, "extracted": 2, "failed": 0}


def test_child_paths_are_relative_to_the_archive_artifacts_dir(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(tmp_path / "one.zip", [("scans/receipt.txt", NOTES)])

    (child,) = extract(source, artifacts_dir, limits).children

    assert child.artifact_path == "members/scans/receipt.txt"
    assert not Path(child.artifact_path).is_absolute()


def test_members_are_listed_with_the_size_and_hash_of_what_was_written(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    memo = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES).read_bytes()
    source = zipgen.make_zip(tmp_path / "one.zip", [("memo.pdf", memo)])

    extraction = extract(source, artifacts_dir, limits)

    assert extraction.metadata["members"] == [
        {
            "path": "memo.pdf",
            "size": len(memo),
            "sha256": hashlib.sha256(memo).hexdigest(),
            "media_type": "application/pdf",
            "state": "extracted",
        }
    ]
    assert extraction.metadata["refused"] == []
    assert (artifacts_dir / "members" / "memo.pdf").read_bytes() == memo


def test_the_members_of_a_nested_zip_become_children_with_the_full_member_path(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    mixed = pdfgen.make_mixed_pdf(tmp_path / "mixed.pdf").read_bytes()
    inner = zipgen.make_zip(tmp_path / "inner.zip", [("q1.pdf", mixed)])
    source = zipgen.make_zip(
        tmp_path / "outer.zip", [("notes.txt", NOTES), ("bundle/inner.zip", inner.read_bytes())]
    )

    extraction = extract(source, artifacts_dir, limits)

    assert children_of(extraction, artifacts_dir) == {
        "notes.txt": NOTES.encode(),
        "bundle/inner.zip/q1.pdf": mixed,
    }
    assert [c.ordinal for c in extraction.children] == [1, 2]
    assert states(extraction) == {
        "notes.txt": "extracted",
        "bundle/inner.zip": "extracted",
        "bundle/inner.zip/q1.pdf": "extracted",
    }


def test_an_lzma_member_is_read(tmp_path: Path, artifacts_dir: Path, limits: LimitSettings) -> None:
    source = zipgen.make_zip(
        tmp_path / "lzma.zip", [("notes.txt", NOTES)], compression=zipfile.ZIP_LZMA
    )

    extraction = extract(source, artifacts_dir, limits)

    assert children_of(extraction, artifacts_dir) == {"notes.txt": NOTES.encode()}


def test_extracting_the_same_archive_again_into_the_same_folder_gives_the_same_result(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    # A retried item finds the members of its earlier attempt in place.
    memo = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES)
    source = zipgen.make_zip(tmp_path / "one.zip", [("memo.pdf", memo.read_bytes())])

    first = extract(source, artifacts_dir, limits)
    second = extract(source, artifacts_dir, limits)

    assert second == first


# --- unsafe names and kinds -----------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("../evil.txt", id="parent"),
        pytest.param("docs/../../evil.txt", id="parent-inside"),
        pytest.param("..\\..\\evil.txt", id="windows-parent"),
        pytest.param("/etc/cron.d/evil.txt", id="absolute"),
        pytest.param("\\\\server\\share\\evil.txt", id="unc"),
        pytest.param("C:/Windows/evil.txt", id="drive-letter"),
        pytest.param("C:evil.txt", id="drive-relative"),
    ],
)
def test_an_archive_of_only_a_name_that_leaves_the_target_is_unsafe(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, name: str
) -> None:
    source = zipgen.make_zip(tmp_path / "evil.zip", [(name, NOTES)])
    before = paths_under(tmp_path)

    with pytest.raises(errors.UnsafeArchiveError) as raised:
        extract(source, artifacts_dir, limits)

    assert raised.value.code == "unsafe_archive"
    assert raised.value.item_state == "failed"
    assert name in raised.value.message
    assert not any(path.name.endswith("evil.txt") for path in paths_under(tmp_path) - before)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.txt", RefusalReason.parent_reference),
        ("/etc/evil.txt", RefusalReason.absolute_path),
        ("D:\\evil.txt", RefusalReason.absolute_path),
    ],
)
def test_a_good_member_beside_an_unsafe_one_is_extracted_and_the_refusal_recorded(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, name: str, reason: RefusalReason
) -> None:
    memo = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES)
    source = zipgen.make_zip(
        tmp_path / "mixed.zip", [("memo.pdf", memo.read_bytes()), (name, NOTES)]
    )

    extraction = extract(source, artifacts_dir, limits)

    assert [child.name for child in extraction.children] == ["memo.pdf"]
    assert refusal_reasons(extraction) == {name: reason.value}
    refused_entry = extraction.metadata["members"][1]
    assert refused_entry["state"] == "refused"
    assert refused_entry["error_code"] == "unsafe_archive"


def test_a_symbolic_link_member_is_refused_and_no_link_is_created(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(
        tmp_path / "link.zip",
        [zipgen.symlink_member("passwd", "/etc/passwd"), ("notes.txt", NOTES)],
    )

    extraction = extract(source, artifacts_dir, limits)

    assert refusal_reasons(extraction) == {"passwd": "symlink"}
    assert states(extraction) == {"passwd": "refused", "notes.txt": "extracted"}
    assert not any(path.is_symlink() for path in paths_under(tmp_path))


def test_an_archive_of_only_a_symbolic_link_is_unsafe(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(
        tmp_path / "link.zip", [zipgen.symlink_member("id_rsa", "/root/.ssh/id_rsa")]
    )

    with pytest.raises(errors.UnsafeArchiveError) as raised:
        extract(source, artifacts_dir, limits)

    assert "id_rsa" in raised.value.message


def test_a_name_with_a_nul_is_refused_and_reported_escaped(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(tmp_path / "nul.zip", [("notes.txt", NOTES), ("safe.pdf.txt", NOTES)])
    zipgen.rename_member(source, "safe.pdf.txt", b"safe.pdf\x00txt")

    extraction = extract(source, artifacts_dir, limits)

    assert refusal_reasons(extraction) == {"safe.pdf\\u0000txt": "nul_in_name"}
    assert not (artifacts_dir / "members" / "safe.pdf").exists()


def test_invisible_characters_in_a_name_are_escaped_in_labels_and_metadata(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    # U+202E reverses what follows: "invoice\u202efdp.txt" would show as "invoicetxt.pdf".
    source = zipgen.make_zip(tmp_path / "rlo.zip", [("invoice\u202efdp.txt", NOTES)])

    extraction = extract(source, artifacts_dir, limits)

    assert extraction.children[0].name == "invoice\\u202efdp.txt"
    assert extraction.metadata["members"][0]["path"] == "invoice\\u202efdp.txt"
    assert (artifacts_dir / "members" / "invoice\u202efdp.txt").read_text() == NOTES


def test_a_duplicate_name_is_refused_and_the_first_member_kept(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(
        tmp_path / "dup.zip", [("notes.txt", NOTES), ("notes.txt", "Replaced after the scan.\n")]
    )

    extraction = extract(source, artifacts_dir, limits)

    assert list(children_of(extraction, artifacts_dir).values()) == [NOTES.encode()]
    assert refusal_reasons(extraction) == {"notes.txt": "duplicate"}
    assert (artifacts_dir / "members" / "notes.txt").read_text() == NOTES


def test_a_file_where_other_members_need_a_folder_is_refused(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(tmp_path / "clash.zip", [("docs", NOTES), ("docs/notes.txt", NOTES)])

    extraction = extract(source, artifacts_dir, limits)

    assert states(extraction) == {"docs": "refused", "docs/notes.txt": "extracted"}
    assert refusal_reasons(extraction) == {"docs": "path_conflict"}


def test_a_link_left_in_the_artifacts_folder_is_never_written_through(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    members_dir = artifacts_dir / "members"
    members_dir.mkdir(parents=True)
    (members_dir / "notes.txt").symlink_to(outside / "notes.txt")
    (members_dir / "docs").symlink_to(outside, target_is_directory=True)
    source = zipgen.make_zip(
        tmp_path / "links.zip",
        [("notes.txt", NOTES), ("docs/memo.txt", NOTES), ("fine.txt", NOTES)],
    )

    extraction = extract(source, artifacts_dir, limits)

    assert refusal_reasons(extraction) == {
        "notes.txt": "outside_target",
        "docs/memo.txt": "outside_target",
    }
    assert list(outside.iterdir()) == []


def test_an_encrypted_member_is_refused(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(tmp_path / "locked.zip", [("notes.txt", NOTES), ("secret.txt", NOTES)])
    zipgen.set_member_flags(source, "secret.txt", zipgen.ENCRYPTED_FLAG)

    extraction = extract(source, artifacts_dir, limits)

    assert refusal_reasons(extraction) == {"secret.txt": "encrypted"}
    assert extraction.metadata["members"][1]["error_code"] == "encrypted"


def test_an_archive_of_only_encrypted_members_raises_encrypted_file_error(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(tmp_path / "locked.zip", [("secret.txt", NOTES)])
    zipgen.set_member_flags(source, "secret.txt", zipgen.ENCRYPTED_FLAG)

    with pytest.raises(errors.EncryptedFileError) as raised:
        extract(source, artifacts_dir, limits)

    assert "secret.txt" in raised.value.message


# --- bombs and caps -------------------------------------------------------------------


def test_a_member_past_the_compression_ratio_is_stopped_as_a_bomb(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zero_bomb(tmp_path / "bomb.zip", "zeros.bin", 64 * 1024 * 1024)

    with pytest.raises(errors.LimitExceededError) as raised:
        extract(source, artifacts_dir, limits)

    assert raised.value.code == "limit_exceeded"
    assert "zeros.bin" in raised.value.message
    assert "decompression bomb" in raised.value.message
    assert not (artifacts_dir / "members" / "zeros.bin").exists()


def test_a_bomb_is_stopped_soon_after_the_ratio_is_passed(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    source = zipgen.make_zero_bomb(tmp_path / "bomb.zip", "zeros.bin", 64 * 1024 * 1024)
    with zipfile.ZipFile(source) as archive:
        compressed = archive.getinfo("zeros.bin").compress_size
    memo = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES)
    mixed = zipgen.make_zip(
        tmp_path / "mixed.zip", [("bomb.zip", source.read_bytes()), ("memo.pdf", memo.read_bytes())]
    )
    limits = LimitSettings(max_archive_ratio=100)

    extraction = extract(mixed, artifacts_dir, limits)

    # The bomb inside bomb.zip expanded at most one chunk past 100 x its size.
    assert extraction.metadata["expanded_bytes"] <= (
        source.stat().st_size + memo.stat().st_size + 100 * compressed + 1024 * 1024
    )
    assert refusal_reasons(extraction) == {"bomb.zip/zeros.bin": "ratio_exceeded"}
    assert states(extraction)["bomb.zip"] == "failed"


def test_a_small_repetitive_member_is_not_a_bomb(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    repetitive = "0,0,0,0\n" * 60_000  # 480 kB that deflate shrinks about 500-fold
    source = zipgen.make_zip(tmp_path / "table.zip", [("zeros.csv", repetitive)])

    extraction = extract(source, artifacts_dir, limits)

    assert children_of(extraction, artifacts_dir) == {"zeros.csv": repetitive.encode()}


def test_members_past_the_total_expanded_size_are_refused_and_the_rest_kept(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    first, second, third = words(8000, 1), words(8000, 2), words(50, 3)
    source = zipgen.make_zip(
        tmp_path / "big.zip", [("a.txt", first), ("b.txt", second), ("c.txt", third)]
    )
    limits = LimitSettings(max_archive_expanded_bytes=len(first) + 1000)

    extraction = extract(source, artifacts_dir, limits)

    assert states(extraction) == {"a.txt": "extracted", "b.txt": "refused", "c.txt": "refused"}
    assert refusal_reasons(extraction) == {
        "b.txt": "total_size_exceeded",
        "c.txt": "total_size_exceeded",
    }
    assert extraction.metadata["refused"][1]["detail"].startswith("not read")
    assert not (artifacts_dir / "members" / "b.txt").exists()


def test_a_single_member_past_the_total_expanded_size_raises_limit_exceeded(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    source = zipgen.make_zip(tmp_path / "big.zip", [("a.txt", words(8000, 1))])

    with pytest.raises(errors.LimitExceededError) as raised:
        extract(source, artifacts_dir, LimitSettings(max_archive_expanded_bytes=10_000))

    assert "10000 bytes" in raised.value.message


def test_more_members_than_the_limit_raises_limit_exceeded_before_writing(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    source = zipgen.make_zip(tmp_path / "many.zip", [(f"n{i}.txt", NOTES) for i in range(5)])

    with pytest.raises(errors.LimitExceededError) as raised:
        extract(source, artifacts_dir, LimitSettings(max_archive_members=4))

    assert "5 members" in raised.value.message
    assert "limit of 4" in raised.value.message
    assert not artifacts_dir.exists()


def test_exactly_the_member_limit_is_allowed(tmp_path: Path, artifacts_dir: Path) -> None:
    source = zipgen.make_zip(tmp_path / "many.zip", [(f"n{i}.txt", NOTES) for i in range(4)])

    extraction = extract(source, artifacts_dir, LimitSettings(max_archive_members=4))

    assert len(extraction.children) == 4


def test_a_central_directory_declaring_too_many_members_is_refused_before_parsing(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    source = zipgen.make_zip(tmp_path / "liar.zip", [("notes.txt", NOTES)])
    data = bytearray(source.read_bytes())
    struct.pack_into("<2H", data, len(data) - 22 + 8, 60_000, 60_000)  # entries on disk, in all
    source.write_bytes(bytes(data))

    with pytest.raises(errors.LimitExceededError) as raised:
        extract(source, artifacts_dir, LimitSettings(max_archive_members=1000))

    assert "declares 60000 members" in raised.value.message


def test_a_zip64_end_record_declaring_too_many_members_is_refused_before_parsing(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    # Over 65,535 entries, the count lives only in the ZIP64 end record.
    source = zipgen.make_zip(
        tmp_path / "crowd.zip",
        [(zipfile.ZipInfo(f"{i}.txt", date_time=zipgen.MEMBER_DATE), b"") for i in range(65_536)],
        compression=zipfile.ZIP_STORED,
    )

    with pytest.raises(errors.LimitExceededError) as raised:
        extract(source, artifacts_dir, LimitSettings(max_archive_members=1000))

    assert "declares 65536 members" in raised.value.message


def test_members_of_nested_archives_count_against_the_same_member_limit(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    inner = zipgen.make_zip(tmp_path / "inner.zip", [(f"n{i}.txt", NOTES) for i in range(3)])
    source = zipgen.make_zip(
        tmp_path / "outer.zip", [("notes.txt", NOTES), ("inner.zip", inner.read_bytes())]
    )

    extraction = extract(source, artifacts_dir, LimitSettings(max_archive_members=4))

    inner_entry = extraction.metadata["members"][1]
    assert inner_entry["state"] == "failed"
    assert inner_entry["error_code"] == "limit_exceeded"
    assert [child.name for child in extraction.children] == ["notes.txt"]


def test_an_archive_nested_deeper_than_the_limit_is_refused(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    source = zipgen.make_nested_zip(tmp_path / "deep.zip", depth=3, innermost=("notes.txt", NOTES))

    with pytest.raises(errors.LimitExceededError) as raised:
        extract(source, artifacts_dir, LimitSettings(max_archive_depth=1))

    assert "level-3.zip" in raised.value.message
    assert "nested 2 deep" in raised.value.message


def test_an_archive_nested_exactly_to_the_limit_is_read(
    tmp_path: Path, artifacts_dir: Path
) -> None:
    source = zipgen.make_nested_zip(tmp_path / "deep.zip", depth=3, innermost=("notes.txt", NOTES))

    extraction = extract(source, artifacts_dir, LimitSettings(max_archive_depth=2))

    assert [child.name for child in extraction.children] == ["level-2.zip/level-3.zip/notes.txt"]


def test_a_bomb_says_more_than_an_unsafe_path_when_nothing_could_be_extracted(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    bomb = zipgen.make_zero_bomb(tmp_path / "bomb.zip", "zeros.bin", 16 * 1024 * 1024)
    source = zipgen.make_zip(
        tmp_path / "both.zip", [("../evil.txt", NOTES), ("bomb.zip", bomb.read_bytes())]
    )

    with pytest.raises(errors.LimitExceededError):
        extract(source, artifacts_dir, limits)


# --- members that fail on their own ----------------------------------------------------


def test_a_member_of_any_type_becomes_a_child_the_archive_does_not_read_it(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    # The member's own item is extracted (and here fails as unsupported) later, alone.
    tool = b"MZ\x90\x00" + bytes(range(256))
    source = zipgen.make_zip(tmp_path / "mixed.zip", [("tool.exe", tool), ("notes.txt", NOTES)])

    extraction = extract(source, artifacts_dir, limits)

    assert children_of(extraction, artifacts_dir) == {"tool.exe": tool, "notes.txt": NOTES.encode()}
    assert extraction.metadata["members"][0]["media_type"] == "application/octet-stream"
    assert states(extraction) == {"tool.exe": "extracted", "notes.txt": "extracted"}


def test_a_bzip2_member_is_not_read(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(
        tmp_path / "bz.zip", [("notes.txt", NOTES)], compression=zipfile.ZIP_BZIP2
    )

    with pytest.raises(errors.UnsupportedTypeError) as raised:
        extract(source, artifacts_dir, limits)

    assert "bzip2" in raised.value.message


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([], id="no-members"),
        pytest.param([("empty-folder/", b"")], id="only-folders"),
    ],
)
def test_an_archive_without_files_raises_empty_file_error(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings, members: list[zipgen.Member]
) -> None:
    source = zipgen.make_zip(tmp_path / "empty.zip", members)

    with pytest.raises(errors.EmptyFileError) as raised:
        extract(source, artifacts_dir, limits)

    assert raised.value.code == "empty_file"
    assert "holds no files" in raised.value.message


def test_an_empty_member_is_still_a_child_so_its_item_can_say_it_is_empty(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(tmp_path / "hollow.zip", [("empty.pdf", b"")])

    extraction = extract(source, artifacts_dir, limits)

    assert children_of(extraction, artifacts_dir) == {"empty.pdf": b""}
    assert extraction.metadata["members"][0]["media_type"] == "inode/x-empty"


# --- archives that cannot be read -------------------------------------------------------


def test_a_zip_signature_followed_by_garbage_is_corrupt(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = tmp_path / "garbage.zip"
    source.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)

    with pytest.raises(errors.CorruptFileError) as raised:
        extract(source, artifacts_dir, limits)

    assert "not a readable ZIP archive" in raised.value.message


def test_a_member_with_a_bad_crc_is_corrupt(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(
        tmp_path / "crc.zip", [("notes.txt", NOTES)], compression=zipfile.ZIP_STORED
    )
    zipgen.flip_data_byte(source, "notes.txt")

    with pytest.raises(errors.CorruptFileError) as raised:
        extract(source, artifacts_dir, limits)

    assert "Bad CRC-32" in raised.value.message
    assert not (artifacts_dir / "members" / "notes.txt").exists()


def test_a_truncated_archive_is_corrupt(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    memo = pdfgen.make_text_pdf(tmp_path / "memo.pdf", pdfgen.MEMO_PAGES)
    whole = zipgen.make_zip(tmp_path / "whole.zip", [("memo.pdf", memo.read_bytes())])
    source = tmp_path / "cut.zip"
    source.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])

    with pytest.raises(errors.CorruptFileError):
        extract(source, artifacts_dir, limits)


def test_a_corrupt_nested_archive_is_recorded_as_a_failed_member(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    source = zipgen.make_zip(
        tmp_path / "outer.zip", [("inner.zip", b"PK\x03\x04" + bytes(300)), ("notes.txt", NOTES)]
    )

    extraction = extract(source, artifacts_dir, limits)

    assert extraction.metadata["members"][0]["error_code"] == "corrupt_file"
    assert [child.name for child in extraction.children] == ["notes.txt"]
    assert extraction.metadata["files"] == {"expected": 2, "extracted": 1, "failed": 1}


def test_a_missing_file_is_not_reported_as_corrupt(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    with pytest.raises(FileNotFoundError):
        extract(tmp_path / "gone.zip", artifacts_dir, limits)


# --- the file system ----------------------------------------------------------------


def test_nothing_is_written_outside_the_artifacts_dir(
    tmp_path: Path, artifacts_dir: Path, limits: LimitSettings
) -> None:
    memo = pdfgen.make_mixed_pdf(tmp_path / "memo.pdf")
    escape_to = tmp_path / "escaped.txt"
    source = zipgen.make_zip(
        tmp_path / "hostile.zip",
        [
            ("../../escaped.txt", NOTES),
            (str(escape_to), NOTES),
            ("..\\escaped.txt", NOTES),
            zipgen.symlink_member("link", str(tmp_path)),
            ("link/escaped.txt", NOTES),
            ("memo.pdf", memo.read_bytes()),
        ],
    )
    before = paths_under(tmp_path)

    extraction = extract(source, artifacts_dir, limits)

    created = paths_under(tmp_path) - before
    assert created
    # The artifacts folder, the folders leading to it, and what is inside it: nothing else.
    assert all(
        path == artifacts_dir or path in artifacts_dir.parents or artifacts_dir in path.parents
        for path in created
    )
    assert not escape_to.exists()
    assert not any(path.is_symlink() for path in created)
    assert len(extraction.metadata["refused"]) == 4
    assert states(extraction)["link/escaped.txt"] == "extracted"  # a folder of ours, not the link
