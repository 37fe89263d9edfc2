"""Extractors are chosen by detected media type; the highest score wins."""

from __future__ import annotations

from pathlib import Path

import pytest

import worker.extractors
from worker import errors
from worker.config import LimitSettings
from worker.extractors import registry
from worker.extractors.base import Extraction, Extractor
from worker.extractors.pdf import PdfExtractor
from worker.extractors.text import PlainTextExtractor

TEST_TYPE = "application/x-sieve-test"


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into a copy, so test classes never leak into other tests."""
    monkeypatch.setattr(registry, "_extractors", dict(registry._extractors))


def make_extractor_class(name: str, score: int, media_types: set[str]) -> type[Extractor]:
    class FakeExtractor(Extractor):
        def extract(self, source: Path, artifacts_dir: Path, limits: LimitSettings) -> Extraction:
            return Extraction(extractor=self.qualified_name(), media_type=TEST_TYPE, segments=[])

    FakeExtractor.name = name
    FakeExtractor.version = "1"
    FakeExtractor.media_types = frozenset(media_types)
    FakeExtractor.score = score
    return FakeExtractor


def test_importing_the_package_registers_the_pdf_and_text_extractors() -> None:
    assert PdfExtractor in registry.registered()
    assert PlainTextExtractor in registry.registered()
    assert {"application/pdf", "text/plain"} <= registry.supported_media_types()


def test_the_package_re_exports_extractor_for() -> None:
    assert worker.extractors.extractor_for is registry.extractor_for
    assert isinstance(worker.extractors.extractor_for("application/pdf"), PdfExtractor)


def test_the_highest_score_for_a_media_type_wins() -> None:
    basic = registry.register(make_extractor_class("basic", 10, {TEST_TYPE}))
    better = registry.register(make_extractor_class("better", 90, {TEST_TYPE}))
    registry.register(make_extractor_class("middling", 50, {TEST_TYPE}))

    chosen = registry.extractor_for(TEST_TYPE)

    assert type(chosen) is better
    assert type(chosen) is not basic


def test_an_extractor_is_only_chosen_for_types_it_declares() -> None:
    registry.register(make_extractor_class("greedy", 1000, {TEST_TYPE}))

    assert isinstance(registry.extractor_for("application/pdf"), PdfExtractor)


def test_an_unknown_media_type_raises_unsupported_type_error() -> None:
    with pytest.raises(errors.UnsupportedTypeError) as raised:
        registry.extractor_for("video/x-unheard-of")

    assert raised.value.code == "unsupported_type"
    assert raised.value.item_state == "unsupported"
    assert "video/x-unheard-of" in raised.value.message


def test_octet_stream_has_no_extractor() -> None:
    with pytest.raises(errors.UnsupportedTypeError):
        registry.extractor_for("application/octet-stream")


def test_registering_a_second_class_under_a_taken_name_raises_and_changes_nothing() -> None:
    before = registry.registered()
    impostor = make_extractor_class("pdf", 1000, {"application/pdf"})

    with pytest.raises(ValueError, match="'pdf' is already registered"):
        registry.register(impostor)

    assert registry.registered() == before
    assert isinstance(registry.extractor_for("application/pdf"), PdfExtractor)


def test_registering_the_same_class_twice_is_harmless() -> None:
    before = registry.registered()

    registry.register(PdfExtractor)

    assert registry.registered() == before


def test_register_works_as_a_decorator_and_returns_the_class() -> None:
    cls = make_extractor_class("decorated", 5, {TEST_TYPE})

    assert registry.register(cls) is cls
    assert type(registry.extractor_for(TEST_TYPE)) is cls
