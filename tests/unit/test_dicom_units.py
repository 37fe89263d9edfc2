"""An archive submitted by series, by study and by instance, through the embedded pipeline.

A generated study (a CT series with a localizer and a duplicate, an MR
series, an enhanced CT, a secondary capture with a name burned in) plus a
DICOMDIR over a copy of some of it goes through ``submit`` and the in-process
pipeline with the stand-in model. What is checked: one item per series (or
study, or file), every instance file accounted for as a member, the index
tables, the DICOMDIR read and never an item, what the model was shown and
the provenance naming each SOP instance and frame, and the reconciliation.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from PIL import Image
from sqlalchemy import select

from db.models import (
    AuditEvent,
    DicomInstance,
    DicomPatient,
    DicomSeries,
    DicomStudy,
    Item,
    ItemRun,
    ItemSource,
    ItemState,
    Result,
    StoredSegment,
)
from jobs import embedded, reconciliation, submit
from jobs.imaging_units import FileSetRead
from tests import dicomgen
from tests.fake_model import FakeModel
from tests.unit.test_embedded_pipeline import Embedded, make_embedded
from worker.imaging import units
from worker.task_specs import build_task


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Embedded]:
    yield from make_embedded(tmp_path, FakeModel())


@pytest.fixture
def archive(tmp_path: Path) -> dict[str, object]:
    root = tmp_path / "archive"
    study = dicomgen.new_study()
    ct = dicomgen.write_ct_series(root / "ct", study)
    mr = dicomgen.write_mr_series(root / "mr", study)
    enhanced = dicomgen.write_enhanced_ct(root / "enhanced" / "abdomen.dcm", study)
    dicomgen.write_burned_in_capture(root / "sc" / "request.dcm", study)
    other = dicomgen.new_study()
    fileset_source = dicomgen.write_mr_series(tmp_path / "fs-source", other, slices=3)
    dicomdir = dicomgen.write_dicomdir(root / "media", fileset_source.paths)
    return {"root": root, "ct": ct, "mr": mr, "enhanced": enhanced, "dicomdir": dicomdir}


def submit_archive(
    env: Embedded, root: Path, unit: str = "series", *, run: bool = True
) -> submit.Submission:
    """Submit ``root`` by ``unit`` and (unless ``run`` is false) process it in process."""
    made = submit.submit(
        env.session_factory,
        env.settings,
        paths=[root],
        task=build_task("summarize", {}, env.settings.model.max_text_chars),
        name="archive",
        executor="in_process",
        options=submit.RunOptions(unit=unit),
    )
    if run:
        embedded.run_item_runs(env.context, made.item_run_ids)
    return made


def test_by_series_each_series_is_one_item_and_every_file_a_member(
    env: Embedded, archive: dict[str, object]
) -> None:
    root = archive["root"]
    assert isinstance(root, Path)
    files = [p for p in root.rglob("*") if p.is_file()]

    made = submit_archive(env, root, "series")

    # CT, MR, enhanced CT, secondary capture, and the DICOMDIR's MR: five series.
    assert made.item_count == 5 == made.dicom_units
    assert made.file_count == len(files) - 1  # the DICOMDIR is an index, not an item
    (fileset,) = made.filesets
    assert fileset.referenced == 3 and fileset.missing == ()
    with env.session_factory() as session:
        items = session.scalars(select(Item).where(Item.job_id == made.job_id)).all()
        assert {item.media_type for item in items} == {units.SERIES_MEDIA_TYPE}
        states = session.scalars(select(ItemRun.state).where(ItemRun.run_id == made.run_id))
        assert set(states) == {ItemState.done}
        sources = session.scalars(select(ItemSource).where(ItemSource.job_id == made.job_id)).all()
        assert {Path(s.path) for s in sources} == {p for p in files if p.name != "DICOMDIR"}
        assert all(s.role == "member" for s in sources)
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "dicom.fileset_read")
        ).one()
        assert audit.details["referenced"] == 3

        report = reconciliation.build_report(session, made.job_id)
        assert report.balanced, report.check_line()
        assert report.counts()["processed"] == made.file_count

        # The index: one patient per study's PatientID, two studies, five series.
        assert len(session.scalars(select(DicomPatient)).all()) == 1  # same patient, both
        assert len(session.scalars(select(DicomStudy)).all()) == 2
        series_rows = session.scalars(select(DicomSeries)).all()
        assert len(series_rows) == 5 and all(row.item_id for row in series_rows)
        assert {row.series_date for row in series_rows} == {"20261203"}
        instances = session.scalars(select(DicomInstance)).all()
        assert len(instances) == made.file_count == made.dicom_instances
        patient = session.scalars(select(DicomPatient)).one()
        assert patient.identifiers["PatientName"] == "Okonkwo^Chidinma"
        assert "Okonkwo" not in json.dumps([row.description for row in series_rows])


def test_a_ct_series_is_shown_in_spatial_order_through_packed_windows_with_provenance(
    env: Embedded, archive: dict[str, object]
) -> None:
    root, ct = archive["root"], archive["ct"]
    assert isinstance(root, Path) and isinstance(ct, dicomgen.WrittenSeries)

    submit_archive(env, root, "series")

    with env.session_factory() as session:
        item = session.scalars(select(Item).where(Item.path.contains(ct.series_instance_uid))).one()
        segments = session.scalars(
            select(StoredSegment).where(StoredSegment.item_id == item.id)
        ).all()
        result = session.scalars(select(Result).where(Result.item_id == item.id)).one()
    assert len(segments) == env.settings.media.dicom_series_samples
    labels = [segment.label for segment in segments]
    assert labels[0] == "series 3 slice 1/12" and labels[-1] == "series 3 slice 12/12"
    offsets = [segment.attributes["offset_mm"] for segment in segments]
    assert offsets == sorted(offsets) and offsets[0] == -50.0 and offsets[-1] == 5.0
    first = segments[0]
    assert "lung window (red)" in first.text and "Okonkwo" not in first.text
    picture = Image.open(env.settings.artifacts_dir / first.artifact_path)
    assert picture.mode == "RGB"
    # The first slice's disc is 0 HU: bright through the lung window, mid-grey through
    # soft tissue, black through brain (40 ± 40 HU); air (-1000 HU) is dark grey through
    # the lung window (-1350 to 150 HU) and black through the other two.
    red, green, blue = picture.getpixel((32, 32))
    assert red > 200 and 90 < green < 115 and blue == 0
    air = picture.getpixel((1, 1))
    assert 50 < air[0] < 70 and air[1:] == (0, 0)
    assembly = item.doc_metadata["series"][0]["assembly"]
    assert len(assembly["localizers"]) == 1 and len(assembly["set_aside"]) == 1
    shown = result.inputs["dicom_images_shown"]
    assert [entry["label"] for entry in shown] == labels
    uids = {segment.attributes["sop_instance_uid"] for segment in segments}
    assert {entry["sop_instance_uid"] for entry in shown} == uids
    assert item.doc_metadata["shown"][0]["sop_instance_uid"] == shown[0]["sop_instance_uid"]


def test_by_study_the_model_gets_a_manifest_and_each_series(
    env: Embedded, archive: dict[str, object]
) -> None:
    root = archive["root"]
    assert isinstance(root, Path)

    made = submit_archive(env, root, "study")

    assert made.item_count == 2  # the study of four series, and the DICOMDIR's study
    with env.session_factory() as session:
        item = session.scalars(select(Item).where(Item.path.contains("4 series"))).one()
        segments = session.scalars(
            select(StoredSegment)
            .where(StoredSegment.item_id == item.id)
            .order_by(StoredSegment.kind, StoredSegment.index)
        ).all()
        study_row = session.scalars(select(DicomStudy).where(DicomStudy.item_id == item.id)).one()
    manifest = next(s for s in segments if s.label == "study manifest")
    assert "Study of 4 series" in manifest.text and "'Chest 5mm'" in manifest.text
    per_series = env.settings.media.dicom_study_samples_per_series
    assert (
        len([s for s in segments if s.kind == "image"]) == 4 * per_series - 2
    )  # SC: 1 image, MR: 3
    assert sorted(study_row.modalities) == ["CT", "MR", "OT"]


def test_by_instance_each_file_is_its_own_item(
    env: Embedded, archive: dict[str, object], tmp_path: Path
) -> None:
    mr = archive["mr"]
    assert isinstance(mr, dicomgen.WrittenSeries)
    folder = tmp_path / "just-mr"
    shutil.copytree(mr.paths[0].parent, folder)

    made = submit_archive(env, folder, "instance")

    assert made.item_count == len(mr.paths) and made.dicom_units == 0
    with env.session_factory() as session:
        assert {i.media_type for i in session.scalars(select(Item))} == {"application/dicom"}
        assert len(session.scalars(select(DicomInstance)).all()) == len(mr.paths)


def test_the_mip_option_adds_each_stacks_projection(tmp_path: Path) -> None:
    for env in make_embedded(tmp_path, FakeModel()):
        env.settings.media.dicom_projection = "mip"
        env.context.config.media.dicom_projection = "mip"
        folder = tmp_path / "ct"
        written = dicomgen.write_ct_series(folder, dicomgen.new_study(), slices=6)
        submit_archive(env, folder, "series")
        with env.session_factory() as session:
            segments = session.scalars(select(StoredSegment)).all()
        (projection,) = [s for s in segments if s.label.endswith("MIP")]
        assert projection.attributes["projection"] == "mip"
        assert len(projection.attributes["sop_instance_uids"]) == written.volume_slices
        picture = Image.open(env.settings.artifacts_dir / projection.artifact_path)
        # The brightest disc of the volume (slice 6, 50 HU) wins the projection: through the
        # brain window (0-80 HU) that is 161 in blue; the 500 HU localizer, kept out, would be 255.
        assert 150 < picture.getpixel((32, 32))[2] < 175


def test_a_damaged_slice_is_skipped_with_a_note_and_a_wholly_damaged_series_fails(
    tmp_path: Path,
) -> None:
    for env in make_embedded(tmp_path, FakeModel()):
        folder = tmp_path / "ct"
        written = dicomgen.write_ct_series(
            folder, dicomgen.new_study(), slices=6, localizer=False, duplicate=False
        )
        damaged = written.paths[2]
        damaged.write_bytes(damaged.read_bytes()[:-3000])  # pixel data cut short
        made = submit_archive(env, folder, "series")
        with env.session_factory() as session:
            item = session.scalars(select(Item)).one()
            state = session.scalars(select(ItemRun.state)).one()
            images = session.scalars(select(StoredSegment)).all()
        assert state == ItemState.done and len(images) == 5
        notes = item.doc_metadata["series"][0]["assembly"]["notes"]
        assert any("cannot be decoded" in note for note in notes)

        broken = tmp_path / "broken"
        written = dicomgen.write_ct_series(
            broken, dicomgen.new_study(), slices=3, localizer=False, duplicate=False
        )
        for path in written.paths:
            path.write_bytes(path.read_bytes()[:-3000])
        made = submit_archive(env, broken, "series")
        with env.session_factory() as session:
            failed = session.scalars(select(ItemRun).where(ItemRun.run_id == made.run_id)).one()
        assert failed.state == ItemState.failed and failed.error_code == "corrupt_file"
        assert "no sampled image of series 3 could be decoded" in (failed.error_message or "")


def test_a_hostile_uid_never_steers_where_a_file_is_written() -> None:
    assert units.uid_path_part("1.2.840.10008.5.1") == "1.2.840.10008.5.1"
    for hostile in ("../../etc/passwd", "/abs", "1.2/../../x", "", "1." * 40):
        part = units.uid_path_part(hostile)
        assert part.startswith("invalid-uid-") and "/" not in part and ".." not in part


def test_an_enhanced_ct_is_rescaled_by_its_functional_groups(
    env: Embedded, archive: dict[str, object]
) -> None:
    enhanced = archive["enhanced"]
    assert isinstance(enhanced, dicomgen.WrittenSeries)
    folder = enhanced.paths[0].parent
    submit_archive(env, folder)
    with env.session_factory() as session:
        first = session.scalars(select(StoredSegment).order_by(StoredSegment.index)).first()
    assert first is not None and first.attributes["frame"] == 5  # stored last, lies first
    # Its disc is 0 HU only through the shared group's rescale (intercept -1024): bright
    # in lung, mid-grey in soft tissue. Stored values (1024) would be white in all three.
    red, green, _ = Image.open(env.settings.artifacts_dir / first.artifact_path).getpixel((32, 32))
    assert red > 200 and 90 < green < 115


def test_a_dicomdir_names_the_instances_it_lists_that_were_not_submitted(
    env: Embedded, tmp_path: Path
) -> None:
    study = dicomgen.new_study()
    source = dicomgen.write_mr_series(tmp_path / "source", study, slices=3)
    dicomdir = dicomgen.write_dicomdir(tmp_path / "media", source.paths)
    listed = sorted(path for path in dicomdir.parent.rglob("*") if path.name != "DICOMDIR")
    listed = [path for path in listed if path.is_file()]
    listed[0].unlink()  # lost from the media: the index still lists it

    made = submit_archive(env, tmp_path / "media", run=False)

    (fileset,) = made.filesets
    assert fileset.referenced == 3
    assert fileset.missing == (str(listed[0]),)
    assert made.file_count == 2  # the two instances left; the DICOMDIR is never an item
    with env.session_factory() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "dicom.fileset_read")
        ).one()
    assert event.details["referenced"] == 3


def test_the_index_keeps_each_instance_s_acquisition_and_content_dates(
    env: Embedded, tmp_path: Path
) -> None:
    from pydicom.data import get_testdata_file

    folder = tmp_path / "real"
    folder.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), folder / "ct.dcm")  # a real scanner's file
    submit_archive(env, folder, run=False)
    with env.session_factory() as session:
        instance = session.scalars(select(DicomInstance)).one()
        study = session.scalars(select(DicomStudy)).one()
        series = session.scalars(select(DicomSeries)).one()
    dates = (study.study_date, series.series_date, instance.acquisition_date, instance.content_date)
    assert dates == ("20040119", "19970430", "19970430", "19970430")


def test_each_modality_can_have_its_own_number_of_samples(env: Embedded, tmp_path: Path) -> None:
    study = dicomgen.new_study()
    ct = dicomgen.write_ct_series(tmp_path / "archive" / "ct", study, localizer=False)
    mr = dicomgen.write_mr_series(tmp_path / "archive" / "mr", study, slices=6)
    env.settings.media = env.settings.media.model_copy(
        update={"dicom_series_samples": 5, "dicom_samples_by_modality": {"MR": 2}}
    )
    submit_archive(env, tmp_path / "archive", "series")
    with env.session_factory() as session:
        shown = {
            series.series_instance_uid: len(
                session.scalars(
                    select(Result.inputs).where(Result.item_id == series.item_id)
                ).one()["dicom_images_shown"]
            )
            for series in session.scalars(select(DicomSeries))
        }
    assert shown == {ct.series_instance_uid: 5, mr.series_instance_uid: 2}


def test_a_dicomdir_record_pointing_outside_its_folder_is_never_followed(
    env: Embedded, tmp_path: Path
) -> None:
    def submit_with_first_file_id(folder: Path, file_id: list[str]) -> FileSetRead:
        study = dicomgen.new_study()
        source = dicomgen.write_mr_series(folder / "source", study, slices=2)
        dicomdir = dicomgen.write_dicomdir(folder / "media", source.paths)
        index = pydicom.dcmread(dicomdir)
        images = [r for r in index.DirectoryRecordSequence if "ReferencedFileID" in r]
        # As long as the real file ID, so the records' offsets still hold.
        assert len("\\".join(file_id)) == len("\\".join(images[0].ReferencedFileID))
        with warnings.catch_warnings():  # pydicom warns of an invalid CS value: the point
            warnings.simplefilter("ignore")
            images[0].ReferencedFileID = file_id
            index.save_as(dicomdir)
        (fileset,) = submit_archive(env, folder / "media", run=False).filesets
        return fileset

    # Out of its folder: pydicom's FileSet refuses the whole index, and nothing is followed.
    escaping = submit_with_first_file_id(tmp_path / "a", ["..", "..", "ETC", "P" * 25])
    assert escaping.referenced == 0 and "inside the DICOMDIR root" in (escaping.problem or "")
    # Inside it but not a PS3.10 file ID (lower case): counted as invalid, not followed.
    lower = submit_with_first_file_id(
        tmp_path / "b", ["PT000000", "ST000000", "SE000000", "im000000"]
    )
    assert (lower.referenced, lower.invalid, lower.missing, lower.problem) == (1, 1, (), None)
    with env.session_factory() as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "dicom.fileset_read")
        ).all()
    assert [event.details["invalid_file_ids"] for event in events] == [0, 1]
