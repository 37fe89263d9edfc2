"""De-identification by PS3.15 Annex E, headers and pixels, read back from what was written.

The generated archive (CT, MR, enhanced CT, and a secondary capture with the
patient's name and ID burned into its pixels) is submitted, exported with
``--format dicom-deid``, and every output file re-read: no identifier of any
input header may appear in any element of any output, nor in what Tesseract
reads in any output frame.
"""

from __future__ import annotations

import io
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.data
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from db.models import AuditEvent, DeidMapping
from jobs import cli, deid_export
from tests import dicomgen, mediagen
from tests.fake_model import FakeModel
from tests.unit.test_dicom_units import submit_archive
from tests.unit.test_embedded_pipeline import Embedded, make_embedded
from worker import ocr
from worker.config import MediaSettings
from worker.extractors.dicom import dicom_identifiers
from worker.imaging import deid, deid_profile, rendering
from worker.imaging.deid_profile import Profile

SECRET = b"test-installation-secret"


def _strings(dataset: pydicom.Dataset) -> Iterator[str]:
    """Every value in the dataset and its sequences, file meta included, as text."""
    for element in dataset.iterall():
        if element.VR in ("OB", "OW", "OF", "OD", "UN") or element.tag == 0x7FE00010:
            continue
        value = element.value
        if isinstance(value, (list, pydicom.multival.MultiValue)):
            yield from (str(v) for v in value)
        elif value is not None and element.VR != "SQ":
            yield str(value)
    meta = getattr(dataset, "file_meta", None)
    if meta is not None:
        yield from (str(element.value) for element in meta)


def _fragments(identifiers: dict[str, Any]) -> list[str]:
    return deid.identifier_fragments(identifiers)


@pytest.fixture
def ct_slices(tmp_path: Path) -> list[Path]:
    return dicomgen.write_ct_series(
        tmp_path / "ct", dicomgen.new_study(), slices=3, localizer=False, duplicate=False
    ).paths


def test_pseudonyms_are_stable_per_secret_and_uids_valid() -> None:
    first, again, other = deid.Pseudonyms(SECRET), deid.Pseudonyms(SECRET), deid.Pseudonyms(b"x")
    uid = "1.2.826.0.1.3680043.10.1234.5"
    assert first.uid(uid) == again.uid(uid) != other.uid(uid)
    assert re.fullmatch(r"2\.25\.[1-9][0-9]*", first.uid(uid)) and len(first.uid(uid)) <= 64
    assert first.patient("MRN-1") == again.patient("MRN-1") != first.patient("MRN-2")
    assert 1 <= first.date_offset_days("MRN-1") <= 3650


def test_the_basic_profile_leaves_no_identifier_and_marks_the_object(ct_slices: list[Path]) -> None:
    original = pydicom.dcmread(ct_slices[0])
    identifiers = dicom_identifiers(original)
    dataset = pydicom.dcmread(ct_slices[0])
    dataset.add_new(0x00091010, "LO", "Okonkwo private note")  # a private element

    made = deid.deidentify(dataset, Profile.parse("basic"), deid.Pseudonyms(SECRET), identifiers)

    text = " ".join(_strings(dataset)).upper()
    for fragment in _fragments(identifiers):
        assert fragment.upper() not in text, fragment
    assert original.SOPInstanceUID not in text and original.StudyInstanceUID not in text
    assert 0x00091010 not in dataset
    assert dataset.PatientIdentityRemoved == "YES"
    assert dataset.LongitudinalTemporalInformationModified == "REMOVED"
    assert [c.CodeValue for c in dataset.DeidentificationMethodCodeSequence] == ["113100"]
    assert dataset.StudyDate == "" and "SeriesDate" not in dataset
    assert dataset.file_meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
    assert made.uids[original.SOPInstanceUID] == dataset.SOPInstanceUID
    assert dataset.PatientID.startswith("SIEVE-") and dataset.Modality == "CT"
    assert dataset.ImagePositionPatient == original.ImagePositionPatient  # geometry kept


def test_uids_stay_consistent_within_a_study_and_dates_keep_their_intervals(
    ct_slices: list[Path],
) -> None:
    pseudonyms = deid.Pseudonyms(SECRET)
    profile = Profile.parse("basic,retain-dates-modified")
    outputs = []
    for path in ct_slices:
        dataset = pydicom.dcmread(path)
        deid.deidentify(dataset, profile, pseudonyms, dicom_identifiers(dataset))
        outputs.append(dataset)
    assert len({d.StudyInstanceUID for d in outputs}) == 1
    assert len({d.FrameOfReferenceUID for d in outputs}) == 1
    assert len({d.SOPInstanceUID for d in outputs}) == 3
    offset = pseudonyms.date_offset_days(dicomgen.PATIENT["PatientID"])
    assert outputs[0].StudyDate == (
        np.datetime64("2026-12-03") - np.timedelta64(offset, "D")
    ).astype(str).replace("-", "")
    assert outputs[0].LongitudinalTemporalInformationModified == "MODIFIED"
    assert outputs[0].StudyTime == "101500"  # times of day are kept with modified dates


def test_options_retain_what_they_name() -> None:
    profile = Profile.parse("retain-uids,retain-patient-characteristics,clean-descriptors")
    assert profile.action("SOPInstanceUID", "UI") == "K"
    assert profile.action("PatientSex", "CS") == "K"
    assert profile.action("SeriesDescription", "LO") == "C"
    assert profile.action("PatientName", "PN") == "D"
    with pytest.raises(ValueError, match="unknown de-identification option"):
        Profile.parse("basic,retain-everything")


def _frames_of(dataset: pydicom.Dataset) -> np.ndarray:
    """The decoded pixels with a leading frame axis, however many frames there are."""
    pixels = dataset.pixel_array
    return pixels if int(dataset.get("NumberOfFrames", 1) or 1) > 1 else pixels[np.newaxis]


def _blanked_mask(cleaning: deid.PixelCleaning, shape: tuple[int, ...]) -> np.ndarray:
    """True where the pixel pass says it blanked: each entry's box in its frame."""
    mask = np.zeros(shape[:3], dtype=bool)
    for entry in cleaning.blanked:
        left, top, right, bottom = entry["box"]
        mask[entry["frame"] - 1, max(top, 0) : bottom, max(left, 0) : right] = True
    return mask


@pytest.mark.tools
@pytest.mark.parametrize(
    "write",
    [
        dicomgen.write_burned_in_capture,  # 8-bit secondary capture
        dicomgen.write_burned_in_ct,  # 16-bit allocated, 12 stored, signed
        dicomgen.write_burned_in_cine,  # 8-bit, five frames
    ],
    ids=["capture-8-bit", "ct-signed-16-bit", "multi-frame"],
)
def test_cleaned_pixels_are_written_lossless_compressed_and_decode_to_what_was_cleaned(
    tmp_path: Path, write: Any
) -> None:
    path = tmp_path / "burned-in.dcm"
    write(path, dicomgen.new_study())
    header = pydicom.dcmread(path, stop_before_pixels=True)
    original = _frames_of(pydicom.dcmread(path))
    frames, cleaning = deid.cleaned_frames(path, header, dicom_identifiers(header), MediaSettings())
    dataset = pydicom.dcmread(path)

    deid.store_cleaned(dataset, frames, header, cleaning)
    dataset.save_as(tmp_path / "out.dcm", enforce_file_format=True)

    written = pydicom.dcmread(tmp_path / "out.dcm")
    assert written.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless
    assert cleaning.transfer_syntax == pydicom.uid.RLELossless and not cleaning.encoding_notes
    decoded = _frames_of(written)
    assert decoded.dtype == original.dtype and decoded.shape == original.shape
    np.testing.assert_array_equal(decoded, np.stack(frames))
    inside = _blanked_mask(cleaning, original.shape)
    assert inside.any(), "the burned-in name was not found"
    np.testing.assert_array_equal(decoded[~inside], original[~inside])  # untouched, bit for bit
    for frame, before, blanked in zip(decoded, original, inside, strict=True):
        assert (frame[blanked] == before.min()).all()  # every box one blank value
        assert (before[blanked] != before.min()).any()  # ... where there was something


def test_pixels_rle_cannot_hold_are_written_uncompressed_and_say_why(
    ct_slices: list[Path],
) -> None:
    header = pydicom.dcmread(ct_slices[0], stop_before_pixels=True)
    header.BitsAllocated, header.BitsStored, header.HighBit = 32, 32, 31
    dose = np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 70000  # beyond 16 bits
    dataset = pydicom.dcmread(ct_slices[0])
    for keyword in ("BitsAllocated", "BitsStored", "HighBit"):
        setattr(dataset, keyword, header[keyword].value)
    dataset.PixelRepresentation = 0
    cleaning = deid.PixelCleaning(frames=1, frames_read=1)

    deid.store_cleaned(dataset, [dose], header, cleaning)

    assert cleaning.transfer_syntax == pydicom.uid.ExplicitVRLittleEndian
    assert any("uncompressed" in note for note in cleaning.encoding_notes)
    written = io.BytesIO()
    dataset.save_as(written, enforce_file_format=True)
    written.seek(0)
    np.testing.assert_array_equal(pydicom.dcmread(written).pixel_array, dose)


@pytest.mark.tools
def test_identical_frames_are_read_once_and_every_frame_is_still_cleaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cine.dcm"
    dicomgen.write_burned_in_cine(path, dicomgen.new_study(), order="ABAAB")
    header = pydicom.dcmread(path, stop_before_pixels=True)
    original = _frames_of(pydicom.dcmread(path))
    pictures_read: list[bytes] = []
    read_text = ocr.read_text

    def counted(image: bytes, media: MediaSettings, **options: Any) -> ocr.OcrResult:
        pictures_read.append(image)
        return read_text(image, media, **options)

    monkeypatch.setattr(ocr, "read_text", counted)

    frames, cleaning = deid.cleaned_frames(path, header, dicom_identifiers(header), MediaSettings())

    assert len(pictures_read) == cleaning.frames_read == 2  # pictures A and B
    assert cleaning.frames == len(frames) == 5
    assert {entry["frame"] for entry in cleaning.blanked} == {1, 2, 3, 4, 5}
    for first, again in ((0, 2), (0, 3), (1, 4)):
        np.testing.assert_array_equal(frames[again], frames[first])
    for frame, before in zip(frames, original, strict=True):
        # The name's line holds only paper and blank boxes: no glyph edge survives.
        name_line = slice(20, 120)
        assert set(np.unique(frame[name_line]).tolist()) <= {int(before.min()), 255}
        assert not np.array_equal(frame, before)


@pytest.fixture
def ultrasound_job(tmp_path: Path) -> Iterator[tuple[Embedded, int, Path]]:
    for env in make_embedded(tmp_path, FakeModel()):
        path = tmp_path / "archive" / "us.dcm"
        dicomgen.write_ultrasound(path, dicomgen.new_study())
        made = submit_archive(env, path.parent, run=False)
        yield env, made.job_id, path


@pytest.mark.tools
def test_the_export_blanks_ultrasound_outside_its_regions_before_reading_text(
    ultrasound_job: tuple[Embedded, int, Path], tmp_path: Path
) -> None:
    env, job_id, source = ultrasound_job
    out = tmp_path / "deid"

    with env.session_factory() as session:
        made = deid_export.export(
            session, env.settings, job_id, out, Profile.parse("basic,clean-pixel"), "tester"
        )

    assert not made.failed and len(made.files) == 1
    written = pydicom.dcmread(made.files[0])
    before, after = pydicom.dcmread(source).pixel_array, written.pixel_array
    left, top, right, bottom = dicomgen.ULTRASOUND_REGION
    region = (slice(top, bottom + 1), slice(left, right + 1))
    np.testing.assert_array_equal(after[region], before[region])  # the scan, bit for bit
    outside = np.ones(after.shape[:2], dtype=bool)
    outside[region] = False
    assert (after[outside] == before.min()).all()  # the banner with the name is gone
    assert (before[outside] != before.min()).any()
    # What the region rule removed was never read: nothing is left for review.
    assert made.pixel_reviews == []
    assert written.BurnedInAnnotation == "NO"
    assert written.PhotometricInterpretation == "RGB"
    assert written.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless


@pytest.fixture
def archive_job(tmp_path: Path) -> Iterator[tuple[Embedded, int, list[Path]]]:
    for env in make_embedded(tmp_path, FakeModel()):
        root = tmp_path / "archive"
        study = dicomgen.new_study()
        dicomgen.write_ct_series(root / "ct", study, slices=6)
        dicomgen.write_enhanced_ct(root / "enhanced.dcm", study, frames=3)
        dicomgen.write_burned_in_capture(root / "sc" / "request.dcm", study)
        made = submit_archive(env, root, run=False)
        yield env, made.job_id, sorted(p for p in root.rglob("*.dcm"))


@pytest.mark.slow
@pytest.mark.tools
def test_the_export_leaves_no_identifier_in_any_tag_or_any_frame(
    archive_job: tuple[Embedded, int, list[Path]], tmp_path: Path
) -> None:
    env, job_id, inputs = archive_job
    out = tmp_path / "deid"
    runner = CliRunner()
    sieve_env = {"SIEVE_DATA_DIR": str(env.settings.data_dir)}
    result = runner.invoke(
        cli.cli,
        [
            *("export", str(job_id), "--format", "dicom-deid", "--out", str(out)),
            *("--profile", "basic,clean-pixel,retain-dates-modified"),
        ],
        env=sieve_env,
    )
    assert result.exit_code == 0, result.output

    fragments: set[str] = set()
    original_uids: set[str] = set()
    for path in inputs:
        header = pydicom.dcmread(path, stop_before_pixels=True)
        fragments.update(_fragments(dicom_identifiers(header)))
        original_uids.update(
            str(header.get(k)) for k in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID")
        )
    outputs = sorted(out.rglob("*.dcm"))
    assert len(outputs) == len(inputs)
    media = MediaSettings()
    burned_in = None
    for path in outputs:
        dataset = pydicom.dcmread(path)
        text = " ".join(_strings(dataset)).upper()
        for fragment in fragments:
            assert fragment.upper() not in text, (path, fragment)
        assert not original_uids & set(_strings(dataset))
        assert dataset.PatientIdentityRemoved == "YES"
        frames = dataset.pixel_array
        frames = frames if int(dataset.get("NumberOfFrames", 1) or 1) > 1 else [frames]
        for frame in frames:
            picture = rendering.rendered(np.asarray(frame), dataset)
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            seen = re.sub(r"[^0-9A-Z]", "", ocr.read_text(buffer.getvalue(), media).text.upper())
            for fragment in fragments:
                assert re.sub(r"[^0-9A-Z]", "", fragment.upper()) not in seen, (path, fragment)
        if dataset.Modality == "OT":
            burned_in = dataset
    # The capture's name and MRN are blanked; its other words are left for review, so
    # it does not claim to be free of burned-in text.
    assert burned_in is not None and burned_in.BurnedInAnnotation == "YES"
    assert "WRIST" in result.output
    ct = next(pydicom.dcmread(p) for p in outputs if pydicom.dcmread(p).Modality == "CT")
    assert ct.BurnedInAnnotation == "NO"

    with env.session_factory() as session:
        kinds = {row.kind for row in session.scalars(select(DeidMapping))}
        assert kinds == {"uid", "patient", "date_offset"}
        exported = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "export.dicom_deid")
        ).one()
        assert exported.details["instances"] == len(inputs)
        encodings = exported.details["pixel_encodings"]
        assert set(encodings) == {"RLE Lossless"} and sum(encodings.values()) == len(inputs)
        assert "Okonkwo" not in str(exported.details)
    key = env.settings.data_dir / deid_export.KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    # The mapping is read back only through the audited command.
    read = runner.invoke(
        cli.cli, ["deid", "mapping", str(job_id), "--kind", "patient"], env=sieve_env
    )
    assert read.exit_code == 0, read.output
    assert f"patient\t{dicomgen.PATIENT['PatientID']}\tSIEVE-" in read.output
    with env.session_factory() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "deid.mapping_read")
        ).one()
    assert event.details["rows"] == 1 and event.details["kind"] == "patient"
    # Exported twice with the same key, the same UIDs come out.
    again = tmp_path / "again"
    runner.invoke(
        cli.cli,
        ["export", str(job_id), "--format", "dicom-deid", "--out", str(again)],
        env=sieve_env,
    )
    assert {p.name for p in again.rglob("*.dcm")} == {p.name for p in outputs}


def test_a_structured_reports_text_and_unnamed_dates_and_uids_do_not_survive() -> None:
    path = Path(pydicom.data.__file__).parent / "test_files" / "reportsi.dcm"
    original = pydicom.dcmread(path)
    dataset = pydicom.dcmread(path)
    dataset.DateOfSecondaryCapture = "20240101"  # a date the table does not name
    dataset.add_new(0x00400512, "LO", "kept")  # ContainerIdentifier: plain, unnamed, kept

    deid.deidentify(dataset, Profile.parse("basic"), deid.Pseudonyms(SECRET), {})

    assert "ContentSequence" not in dataset
    assert "DateOfSecondaryCapture" not in dataset
    assert dataset.SOPClassUID == original.SOPClassUID  # a registered class UID stays
    assert dataset.SOPInstanceUID != original.SOPInstanceUID
    text = " ".join(_strings(dataset))
    assert str(original.PatientName).split("^")[0] not in text


def test_retain_safe_private_keeps_only_what_is_listed_safe(ct_slices: list[Path]) -> None:
    def with_private() -> pydicom.Dataset:
        dataset = pydicom.dcmread(ct_slices[0])
        block = dataset.private_block(0x0019, "ACME_SCAN_01", create=True)
        block.add_new(0x1B, "DS", "2.5")  # a scan parameter: listed safe
        block.add_new(0x20, "LO", "Okonkwo")  # a technologist's note: not listed
        return dataset

    safe = frozenset({deid.SafePrivate.parse("0019,ACME_SCAN_01,1B")})
    kept = with_private()
    deid.deidentify(kept, Profile.parse("retain-safe-private"), deid.Pseudonyms(SECRET), {}, safe)
    assert kept.private_block(0x0019, "ACME_SCAN_01")[0x1B].value == 2.5
    assert (0x0019, 0x1020) not in kept
    assert "113111" in [c.CodeValue for c in kept.DeidentificationMethodCodeSequence]

    removed = with_private()
    deid.deidentify(removed, Profile.parse("basic"), deid.Pseudonyms(SECRET), {}, safe)
    assert not any(element.tag.is_private for element in removed)
    with pytest.raises(ValueError, match="GROUP,CREATOR,ELEMENT"):
        deid.SafePrivate.parse("0019-ACME")


def test_the_whole_of_table_e1_1_is_applied_with_values_valid_for_each_vr(tmp_path: Path) -> None:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    from worker.imaging.annex_e import TABLE_E1_1

    # Every row of the 2024e table but the repeating and private groups, each a real keyword.
    assert len(TABLE_E1_1) >= 600
    assert all(tag_for_keyword(keyword) is not None for keyword in TABLE_E1_1)
    dataset = pydicom.dcmread(
        dicomgen.write_ct_series(
            tmp_path / "ct", dicomgen.new_study(), slices=1, localizer=False, duplicate=False
        ).paths[0]
    )
    # Attributes the table names that a hand-made list easily misses, one per VR family.
    planted = {
        "ConsultingPhysicianName": ("Dr^Who", "Z"),  # PN, Z
        "AssertionDateTime": ("20240102030405", "D"),  # DT, D
        "DateOfLastDetectorCalibration": ("20240102", "D"),  # DA, X/D in a standard IOD
        "DestinationAE": ("WARD7PACS", "D"),  # AE, D
        "XRayDetectorID": ("DET-00917", "D"),  # UC, D
        "AdmittingDate": ("20240101", "X"),  # DA, X
        "CameraOwnerName": ("Ward 7", "X"),  # UT, X
        "AcquisitionUID": (pydicom.uid.generate_uid(), "U"),  # UI, U
        "DeviceAlternateIdentifier": ("ALT-42", "Z"),  # UC, Z
    }
    for keyword, (value, _action) in planted.items():
        setattr(dataset, keyword, value)
    deid.deidentify(dataset, Profile.parse("basic"), deid.Pseudonyms(SECRET), {})
    for keyword, (value, action) in planted.items():
        if action == "X":
            assert keyword not in dataset, keyword
            continue
        kept = dataset.data_element(keyword)
        assert kept is not None and str(kept.value) != value, keyword
        if action == "Z":
            assert not kept.value, keyword
    assert dataset.AssertionDateTime == "19000101000000"
    assert dataset.DestinationAE == "ANONYMOUS"
    # What was written is valid for each VR: it writes and reads back.
    written = tmp_path / "out.dcm"
    dataset.save_as(written, enforce_file_format=True)
    reread = pydicom.dcmread(written)
    assert dictionary_VR(tag_for_keyword("XRayDetectorID")) == "UC"
    assert reread.XRayDetectorID == dataset.XRayDetectorID
    # Options follow their own columns of the table.
    modified = Profile.parse("retain-dates-modified,retain-device-identity")
    assert modified.action("AssertionDateTime", "DT") == "C"
    assert modified.action("XRayDetectorID", "UC") == "K"
    assert modified.action("DestinationAE", "AE") == "C"
    assert Profile.parse("basic").action("DateOfLastDetectorCalibration", "DA") == "D"


@pytest.mark.tools
def test_a_device_region_rule_blanks_its_banner_whatever_the_ocr_reads(tmp_path: Path) -> None:
    study = dicomgen.new_study()
    path = tmp_path / "capture.dcm"
    dicomgen.write_burned_in_capture(path, study)
    stamped = pydicom.dcmread(path)
    stamped.Manufacturer = "ACME Imaging"
    banner = np.asarray(mediagen.text_image(["WARD 7 ROOM 12"], (900, 110)).convert("L"))
    pixels = stamped.pixel_array.copy()
    pixels[-110:, :] = banner  # a device banner in the bottom strip, naming no identifier
    stamped.PixelData = pixels.tobytes()
    stamped.save_as(path, enforce_file_format=True)
    header = pydicom.dcmread(path, stop_before_pixels=True)
    identifiers = dicom_identifiers(header)
    rule = deid_profile.RegionRule(
        name="acme-banner", manufacturer="acme", modality="OT", boxes=[(0, 220, 900, 330)]
    )
    other_device = deid_profile.RegionRule(
        name="other", manufacturer="Other Co", boxes=[(0, 0, 9, 9)]
    )

    without = deid.clean_pixels(path, pydicom.dcmread(path), header, identifiers, MediaSettings())
    assert any("WARD" in entry["text"].upper() for entry in without.review)
    cleaned_dataset = pydicom.dcmread(path)
    with_rule = deid.clean_pixels(
        path, cleaned_dataset, header, identifiers, MediaSettings(), [rule, other_device]
    )

    assert with_rule.rules_applied == ["acme-banner"]
    assert not any("WARD" in entry["text"].upper() for entry in with_rule.review)
    strip = cleaned_dataset.pixel_array[220:330]
    assert strip.max() == strip.min()  # the whole banner strip is one blank value
    assert any(entry.get("rule") == "acme-banner" for entry in with_rule.blanked)
    assert with_rule.as_json()["region_rules"] == ["acme-banner"]


@pytest.mark.tools
def test_the_pixel_pass_runs_in_the_sandbox_and_a_hostile_instance_fails_alone(
    tmp_path: Path,
) -> None:
    from worker import errors, sandbox
    from worker.config import LimitSettings

    path = tmp_path / "capture.dcm"
    dicomgen.write_burned_in_capture(path, dicomgen.new_study())
    header = pydicom.dcmread(path, stop_before_pixels=True)
    identifiers = dicom_identifiers(header)
    here_frames, here = deid.cleaned_frames(path, header, identifiers, MediaSettings())

    frames, cleaning = sandbox.clean_pixels_isolated(
        path, identifiers, LimitSettings(), MediaSettings()
    )

    assert cleaning == here and cleaning.blanked  # the name and MRN were found and blanked
    np.testing.assert_array_equal(frames[0], here_frames[0])
    # Pixel data shorter than the header promises: this instance fails with a code.
    hostile = pydicom.dcmread(path)
    hostile.Rows, hostile.Columns, hostile.NumberOfFrames = 20000, 20000, 40
    hostile.save_as(tmp_path / "hostile.dcm", enforce_file_format=True)
    with pytest.raises(errors.InputError):
        sandbox.clean_pixels_isolated(
            tmp_path / "hostile.dcm", identifiers, LimitSettings(), MediaSettings()
        )
