"""The hostile corpus: its shape, and the outcomes Sieve's extractors reach in-process.

The integration test runs the corpus through a real worker and its sandbox.
This one needs no services: it checks that the corpus is what it claims (small,
quick to build, every expectation complete), and that each expectation holds as
far as it can be checked in this process: through the registered extractors
for the cases verified that way, through Pillow for the image bombs, and by
counting what MuPDF draws for the PDF that spins.
"""

from __future__ import annotations

import hashlib
import inspect
import time
from dataclasses import dataclass
from pathlib import Path

import pymupdf
import pytest
from PIL import Image, UnidentifiedImageError

from tests import hostile
from tests.hostile import HostileCase
from worker import errors
from worker.config import LimitSettings
from worker.extractors import extractor_for
from worker.extractors.base import Extraction
from worker.media_types import detect_media_type

MAX_BUILD_SECONDS = 20
MAX_CORPUS_BYTES = 50 * 1024 * 1024

# What Pillow raises where the image extractor is expected to end with each code.
PILLOW_ERRORS: dict[str, type[Exception]] = {
    "limit_exceeded": Image.DecompressionBombError,
    "corrupt_file": UnidentifiedImageError,
}


@dataclass(frozen=True)
class BuiltCorpus:
    folder: Path
    cases: list[HostileCase]
    build_seconds: float

    def case(self, key: str) -> HostileCase:
        (found,) = [case for case in self.cases if case.key == key]
        return found


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> BuiltCorpus:
    folder = tmp_path_factory.mktemp("hostile")
    started = time.monotonic()
    cases = hostile.build_hostile_corpus(folder)
    return BuiltCorpus(folder, cases, time.monotonic() - started)


def every_error_code() -> set[str]:
    """The code of every error class Sieve has."""
    return {
        member.code
        for _, member in inspect.getmembers(errors, inspect.isclass)
        if issubclass(member, errors.SieveError)
    }


def limits_for(case: HostileCase) -> LimitSettings:
    return hostile.HOSTILE_LIMITS if case.needs_low_limits else LimitSettings()


def extract_as_the_pipeline_would(
    source: Path, work_dir: Path, limits: LimitSettings
) -> tuple[str, str | None, Extraction | None]:
    """(state, error code, extraction): detection, then the registered extractor.

    Like the pipeline, it reads a copy named by its SHA-256 (the content store
    keeps no names), so a hostile name never reaches a parser. A Sieve error
    ends the item in its ``item_state`` with its ``code``; any other exception
    is a bug and propagates.
    """
    data = source.read_bytes()
    stored = work_dir / "objects" / hashlib.sha256(data).hexdigest()
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(data)
    try:
        extractor = extractor_for(detect_media_type(stored))
        extraction = extractor.extract(stored, work_dir / "artifacts", limits)
    except errors.SieveError as error:
        return error.item_state, error.code, None
    return "done", None, extraction


# --- shape ------------------------------------------------------------------------


def test_the_corpus_holds_at_least_16_cases_with_unique_keys_and_paths(
    corpus: BuiltCorpus,
) -> None:
    keys = [case.key for case in corpus.cases]
    paths = [case.path for case in corpus.cases]
    assert len(corpus.cases) >= 16
    assert len(set(keys)) == len(keys)
    assert len(set(paths)) == len(paths)
    assert tuple(keys) == hostile.CASE_KEYS


def test_every_case_is_one_file_in_the_folder_and_nothing_else_is(corpus: BuiltCorpus) -> None:
    assert {path.relative_to(corpus.folder) for path in corpus.folder.iterdir()} == {
        case.path for case in corpus.cases
    }
    assert all((corpus.folder / case.path).is_file() for case in corpus.cases)


def test_the_corpus_builds_quickly_and_stays_small(corpus: BuiltCorpus) -> None:
    total_bytes = sum((corpus.folder / case.path).stat().st_size for case in corpus.cases)
    assert corpus.build_seconds < MAX_BUILD_SECONDS
    assert total_bytes < MAX_CORPUS_BYTES


def test_every_expectation_is_complete_and_names_real_error_codes(corpus: BuiltCorpus) -> None:
    known_codes = every_error_code()
    for case in corpus.cases:
        assert case.expected_state in {"failed", "unsupported", "done"}, case.key
        assert (case.expected_state == "done") == (not case.expected_codes), case.key
        assert case.expected_codes <= known_codes, case.key
        assert case.description and case.verified, case.key
        assert not case.needs_sandbox or case.needs_low_limits, case.key


def test_the_names_that_attack_are_really_on_disk(corpus: BuiltCorpus) -> None:
    names = {entry.name for entry in corpus.folder.iterdir()}
    assert "invoice;touch PWNED;$(touch PWNED2).pdf" in names
    assert any("\udce9" in name for name in names)  # a Latin-1 byte, undecodable as UTF-8
    assert max(len(name.encode("utf-8", "surrogateescape")) for name in names) > 240


# --- outcomes -----------------------------------------------------------------------


@pytest.mark.parametrize("key", hostile.CASE_KEYS)
def test_each_case_reaches_its_expected_outcome_as_far_as_it_can_be_checked_here(
    key: str, corpus: BuiltCorpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = corpus.case(key)
    source = corpus.folder / case.path
    if case.needs_sandbox:
        assert_it_spins(source)
    elif case.verified.startswith(hostile.PILLOW_ONLY):
        assert_pillow_refuses(source, case, monkeypatch)
    else:
        assert_the_extractors_reach(source, case, tmp_path)


def assert_the_extractors_reach(source: Path, case: HostileCase, work_dir: Path) -> None:
    state, code, extraction = extract_as_the_pipeline_would(source, work_dir, limits_for(case))
    assert state == case.expected_state
    if case.expected_state == "done":
        assert extraction is not None
        assert extraction.segments or extraction.children  # a container's files are its children
    else:
        assert code in case.expected_codes


def assert_pillow_refuses(source: Path, case: HostileCase, monkeypatch: pytest.MonkeyPatch) -> None:
    (code,) = case.expected_codes
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LimitSettings().max_image_pixels)
    with pytest.raises(PILLOW_ERRORS[code]), Image.open(source) as image:
        image.load()


def assert_it_spins(source: Path) -> None:
    """The file is the exponential drawing, and MuPDF really draws every repetition.

    Running the file itself would take hours; a copy 5 levels shallower must
    draw exactly fan_out^levels lines, so nothing collapses the repetition.
    """
    assert source.read_bytes() == hostile.spinning_pdf(hostile.SPIN_LEVELS, hostile.SPIN_FAN_OUT)
    shallow_levels = hostile.SPIN_LEVELS - 5
    shallow = hostile.spinning_pdf(shallow_levels, hostile.SPIN_FAN_OUT)
    with pymupdf.open(stream=shallow, filetype="pdf") as document:
        drawings = document[0].get_drawings()
    assert len(drawings) == hostile.SPIN_FAN_OUT**shallow_levels


def test_a_pdf_named_txt_is_read_as_a_pdf(corpus: BuiltCorpus, tmp_path: Path) -> None:
    source = corpus.folder / corpus.case("pdf-named-txt").path

    _, _, extraction = extract_as_the_pipeline_would(source, tmp_path, LimitSettings())

    assert extraction is not None
    assert extraction.media_type == "application/pdf"
    assert "Linden Housing Association" in extraction.segments[0].text


def test_the_partly_hostile_zip_keeps_the_invoice_and_records_the_refusal(
    corpus: BuiltCorpus, tmp_path: Path
) -> None:
    source = corpus.folder / corpus.case("zip-partly-hostile").path

    _, _, extraction = extract_as_the_pipeline_would(source, tmp_path, LimitSettings())

    assert extraction is not None
    assert [child.name for child in extraction.children] == ["invoices/INV-2024-0412.pdf"]
    assert [refused["reason"] for refused in extraction.metadata["refused"]] == ["parent_reference"]


def test_the_ten_thousand_page_pdf_is_within_the_default_page_limit(
    corpus: BuiltCorpus,
) -> None:
    # Its failure comes from HOSTILE_LIMITS alone; under the defaults it would be read.
    case = corpus.case("ten-thousand-pages")
    with pymupdf.open(corpus.folder / case.path) as document:
        assert document.page_count == hostile.MANY_PAGES
    assert (
        hostile.HOSTILE_LIMITS.max_pdf_pages < hostile.MANY_PAGES <= LimitSettings().max_pdf_pages
    )


def test_the_low_limits_are_settings_that_exist() -> None:
    # Pydantic ignores unknown names: a renamed setting would silently stay at its default.
    low = hostile.HOSTILE_LIMITS
    assert (low.max_pdf_pages, low.extract_cpu_s, low.extract_wall_s) == (2000, 10, 20.0)
    assert low.extract_memory_mb == 1024
    assert (low.convert_base_s, low.convert_per_mib_s) == (0.3, 0.0)
    assert low.model_fields_set == {
        "max_pdf_pages",
        "extract_cpu_s",
        "extract_wall_s",
        "extract_memory_mb",
        "convert_base_s",
        "convert_per_mib_s",
    }
