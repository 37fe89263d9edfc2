"""Series assembly, on generated series with every oddity an archive has.

The series of ``tests/dicomgen.py`` are read header-only and assembled; each
slice's disc carries its spatial index in its grey level, so the order found
can be checked against the pixels as well as the positions.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pydicom
import pytest

from tests import dicomgen
from worker import errors
from worker.imaging import headers, series
from worker.imaging.headers import InstanceHeader


def _headers(paths: list[Path]) -> list[InstanceHeader]:
    return [headers.read_header(path).header for path in paths]


@pytest.fixture
def study() -> dicomgen.Study:
    return dicomgen.new_study()


def test_slices_are_ordered_by_position_not_by_instance_number(
    tmp_path: Path, study: dicomgen.Study
) -> None:
    written = dicomgen.write_ct_series(tmp_path, study, localizer=False, duplicate=False)
    found = _headers(written.paths)
    assert [h.instance_number for h in found] != sorted(h.instance_number or 0 for h in found)

    assembled = series.assemble(found)

    (stack,) = assembled.stacks
    assert [s.offset_mm for s in stack.slices] == written.positions
    levels = [
        int(pydicom.dcmread(written.paths[s.member]).pixel_array[32, 32]) - 1024
        for s in stack.slices
    ]
    assert levels == [dicomgen.slice_level(i) for i in range(len(levels))]
    assert stack.spacing is not None and stack.spacing.regular
    assert stack.spacing.median_mm == pytest.approx(5.0)
    assert assembled.notes == []


def test_a_localizer_stays_out_and_a_duplicate_position_keeps_the_later_acquisition(
    tmp_path: Path, study: dicomgen.Study
) -> None:
    written = dicomgen.write_ct_series(tmp_path, study)
    found = _headers(written.paths)

    assembled = series.assemble(found)

    (stack,) = assembled.stacks
    assert len(stack.slices) == written.volume_slices
    (localizer,) = assembled.localizers
    assert "LOCALIZER" in found[localizer.member].image_type
    ((dropped, why),) = assembled.set_aside
    kept = next(s for s in stack.slices if s.offset_mm == pytest.approx(written.positions[4]))
    assert kept.acquisition_number == 2 and dropped.acquisition_number == 1
    assert "acquisition 2" in why and kept.sop_instance_uid in why


def test_an_orientation_change_splits_the_series_and_a_few_orthogonal_images_are_localizers(
    tmp_path: Path, study: dicomgen.Study
) -> None:
    split = series.assemble(
        _headers(
            dicomgen.write_ct_series(
                tmp_path / "a", study, localizer=False, duplicate=False, second_orientation=6
            ).paths
        )
    )
    assert [len(s.slices) for s in split.stacks] == [12, 6]
    assert split.stacks[1].normal == pytest.approx((-1.0, 0.0, 0.0))
    assert "split into 2 stacks" in split.notes

    scouts = series.assemble(
        _headers(
            dicomgen.write_ct_series(
                tmp_path / "b", study, localizer=False, duplicate=False, second_orientation=2
            ).paths
        )
    )
    assert [len(s.slices) for s in scouts.stacks] == [12]
    assert len(scouts.localizers) == 2


def test_complete_repeated_acquisitions_become_one_stack_each(
    tmp_path: Path, study: dicomgen.Study
) -> None:
    first = dicomgen.write_ct_series(tmp_path / "1", study, localizer=False, duplicate=False)
    found = _headers(first.paths)
    # The same positions acquired again (a second phase), in the same series.
    again = [
        dataclasses.replace(h, sop_instance_uid=h.sop_instance_uid + ".2", acquisition_number=2)
        for h in found
    ]

    assembled = series.assemble(found + again)

    assert [s.acquisition_number for s in assembled.stacks] == [1, 2]
    assert all(len(s.slices) == 12 for s in assembled.stacks)
    assert assembled.set_aside == []


def test_a_missing_slice_is_noted_as_a_gap(tmp_path: Path, study: dicomgen.Study) -> None:
    written = dicomgen.write_ct_series(tmp_path, study, localizer=False, duplicate=False)
    found = _headers(written.paths)
    missing = next(h for h in found if h.position and h.position[2] == written.positions[6])

    assembled = series.assemble([h for h in found if h is not missing])

    spacing = assembled.stacks[0].spacing
    assert spacing is not None and not spacing.regular
    assert spacing.gaps_after == (5,) and spacing.largest_mm == pytest.approx(10.0)
    assert any("gap after slice 6" in note for note in assembled.notes)


def test_an_enhanced_multi_frame_object_is_placed_frame_by_frame(
    tmp_path: Path, study: dicomgen.Study
) -> None:
    written = dicomgen.write_enhanced_ct(tmp_path / "enhanced.dcm", study)

    assembled = series.assemble(_headers(written.paths))

    (stack,) = assembled.stacks
    assert [s.offset_mm for s in stack.slices] == written.positions
    assert [s.frame for s in stack.slices] == [4, 3, 2, 1, 0]  # stored in reverse


def test_projection_images_are_ordered_by_instance_number(tmp_path: Path) -> None:
    found = [
        dataclasses.replace(
            _headers(
                [
                    dicomgen.write_ct_series(
                        tmp_path, dicomgen.new_study(), slices=1, localizer=False, duplicate=False
                    ).paths[0]
                ]
            )[0],
            sop_instance_uid=f"1.2.3.{number}",
            instance_number=number,
            position=None,
            orientation=None,
        )
        for number in (3, 1, 2)
    ]

    assembled = series.assemble(found)

    assert assembled.geometry == "projection"
    assert [s.instance_number for s in assembled.stacks[0].slices] == [1, 2, 3]


def test_a_series_that_cannot_be_put_in_order_fails_with_its_own_code(
    tmp_path: Path, study: dicomgen.Study
) -> None:
    found = _headers(
        dicomgen.write_ct_series(tmp_path, study, localizer=False, duplicate=False).paths
    )
    found[3] = dataclasses.replace(found[3], position=None)
    with pytest.raises(errors.SeriesAssemblyError) as raised:
        series.assemble(found)
    assert raised.value.code == "series_unassemblable"
    assert "1 of 12 images have no ImagePositionPatient" in raised.value.message

    found[3] = dataclasses.replace(found[4], sop_instance_uid="1.2.3", rows=128, columns=128)
    with pytest.raises(errors.SeriesAssemblyError, match="different sizes"):
        series.assemble(found)

    flat = dataclasses.replace(found[0], orientation=(1.0, 0.0, 0.0, 1.0, 0.0, 0.0))
    with pytest.raises(errors.SeriesAssemblyError, match="does not describe a plane"):
        series.assemble([flat])


def test_samples_spread_through_every_stack_first_and_last_included(
    tmp_path: Path, study: dicomgen.Study
) -> None:
    assembled = series.assemble(
        _headers(
            dicomgen.write_ct_series(
                tmp_path, study, localizer=False, duplicate=False, second_orientation=6
            ).paths
        )
    )

    chosen = series.sample(assembled, 6)

    assert chosen == [(0, 0), (0, 4), (0, 7), (0, 11), (1, 0), (1, 5)]
    assert series.sample(assembled, 1) == [(0, 0), (1, 0)]  # every stack is seen


def test_headers_are_read_without_the_pixels_and_keep_identifiers_apart(
    tmp_path: Path, study: dicomgen.Study
) -> None:
    path = dicomgen.write_ct_series(
        tmp_path, study, slices=1, localizer=False, duplicate=False
    ).paths[0]

    read = headers.read_header(path)

    assert read.header.has_pixels and read.header.modality == "CT"
    assert read.header.rows == 64 and read.header.position == (-160.0, -160.0, -50.0)
    assert read.patient_identifiers["PatientName"] == "Okonkwo^Chidinma"
    assert read.study_identifiers["AccessionNumber"] == study.accession_number
    assert "Okonkwo" not in repr(read.header)


def test_samples_add_up_to_the_count_asked_for(tmp_path: Path, study: dicomgen.Study) -> None:
    found = _headers(
        dicomgen.write_ct_series(tmp_path, study, slices=6, localizer=False, duplicate=False).paths
    )
    stacks = [series.Stack([s], normal=None) for s in series.assemble(found).stacks[0].slices][:3]
    for stack in stacks:
        stack.slices = stack.slices * 4  # three equal stacks of four
    assembled = series.AssembledSeries(stacks=stacks)

    assert len(series.sample(assembled, 10)) == 10
