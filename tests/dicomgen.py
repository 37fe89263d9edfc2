"""Synthetic DICOM archives, written with pydicom: nothing is downloaded.

A CT series whose InstanceNumbers are shuffled against its positions, with a
localizer, a duplicate position and (optionally) a second orientation; an MR
series; an enhanced multi-frame CT placed frame by frame; a secondary
capture with a patient's name burned into its pixels; and a DICOMDIR over
the lot. The pixel values encode each slice's position (a disc whose grey
level is the slice index), so a test can tell from the pixels which slice
it was shown.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    EnhancedCTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    generate_uid,
)

from tests import mediagen

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SAGITTAL = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
PATIENT = {
    "PatientName": "Okonkwo^Chidinma",
    "PatientID": "MRN-40417",
    "PatientBirthDate": "19710214",
    "PatientSex": "F",
}
UID_ROOT = "1.2.826.0.1.3680043.10.1234."  # a test root under the pydicom prefix family


@dataclass(frozen=True)
class Study:
    """UIDs shared by the series of one synthetic study."""

    study_instance_uid: str
    frame_of_reference_uid: str
    accession_number: str = "ACC-20261203-7"


def new_study() -> Study:
    return Study(generate_uid(UID_ROOT), generate_uid(UID_ROOT))


def _base(sop_class: str, study: Study, series_uid: str, modality: str, number: int) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid(UID_ROOT)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = study.study_instance_uid
    dataset.SeriesInstanceUID = series_uid
    dataset.FrameOfReferenceUID = study.frame_of_reference_uid
    dataset.Modality = modality
    dataset.SeriesNumber = number
    dataset.StudyDate = "20261203"
    dataset.StudyTime = "101500"
    dataset.StudyID = "S-7731"
    dataset.SeriesDate = "20261203"
    dataset.AccessionNumber = study.accession_number
    dataset.InstitutionName = "St Brigid Teaching Hospital"
    dataset.ReferringPhysicianName = "Adeyemi^Tolu"
    for keyword, value in PATIENT.items():
        setattr(dataset, keyword, value)
    return dataset


def _pixels(dataset: Dataset, image: np.ndarray) -> None:
    dataset.Rows, dataset.Columns = image.shape[-2:]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 16
    dataset.BitsStored = 16
    dataset.HighBit = 15
    dataset.PixelRepresentation = 1
    dataset.PixelData = image.astype(np.int16).tobytes()


def slice_image(level_hu: int, size: int = 64) -> np.ndarray:
    """Air (-1000 HU) around a disc at ``level_hu``: the slice's identity, in its pixels."""
    y, x = np.mgrid[:size, :size]
    disc = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 3) ** 2
    stored = np.full((size, size), -1000 + 1024, dtype=np.int32)
    stored[disc] = level_hu + 1024
    return stored


def slice_level(index: int) -> int:
    """The HU level of the disc in slice ``index`` (0-based, in spatial order)."""
    return 10 * index


def _ct_slice(
    study: Study,
    series_uid: str,
    *,
    z: float,
    level: int,
    instance: int,
    orientation: Sequence[float] = AXIAL,
    acquisition: int = 1,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "AXIAL"),
    position: Sequence[float] | None = None,
    size: int = 64,
) -> Dataset:
    dataset = _base(CTImageStorage, study, series_uid, "CT", 3)
    dataset.SeriesDescription = "Chest 5mm"
    dataset.BodyPartExamined = "CHEST"
    dataset.ImageType = list(image_type)
    dataset.InstanceNumber = instance
    dataset.AcquisitionNumber = acquisition
    dataset.ImagePositionPatient = list(position or (-160.0, -160.0, z))
    dataset.ImageOrientationPatient = list(orientation)
    dataset.PixelSpacing = [5.0, 5.0]
    dataset.SliceThickness = 5.0
    dataset.RescaleIntercept = -1024
    dataset.RescaleSlope = 1
    _pixels(dataset, slice_image(level, size))
    return dataset


@dataclass(frozen=True)
class WrittenSeries:
    """A series on disk, and what its assembly should find."""

    series_instance_uid: str
    paths: list[Path]
    volume_slices: int  # images in the main stack(s), after localizers and duplicates
    positions: list[float]  # z of each volume slice, in spatial order


def write_ct_series(
    folder: Path,
    study: Study,
    *,
    slices: int = 12,
    localizer: bool = True,
    duplicate: bool = True,
    second_orientation: int = 0,
    seed: int = 7,
    size: int = 64,
) -> WrittenSeries:
    """An axial CT series, z from -50 mm up by 5 mm, InstanceNumbers shuffled.

    With ``localizer`` a coronal scout (ImageType LOCALIZER) joins the series;
    with ``duplicate`` slice 4 is written twice, the copy from a later
    acquisition (the one kept); ``second_orientation`` adds that many sagittal
    images, which the assembly must split into a stack of their own.
    """
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid(UID_ROOT)
    numbers = list(range(1, slices + 1))
    random.Random(seed).shuffle(numbers)
    paths: list[Path] = []
    positions = [-50.0 + 5.0 * index for index in range(slices)]
    for index, z in enumerate(positions):
        dataset = _ct_slice(
            study, series_uid, z=z, level=slice_level(index), instance=numbers[index], size=size
        )
        paths.append(_save(dataset, folder / f"ct-{numbers[index]:03d}.dcm"))
    if duplicate:
        again = _ct_slice(
            study, series_uid, z=positions[4], level=slice_level(4), instance=100, acquisition=2
        )
        paths.append(_save(again, folder / "ct-100.dcm"))
    if localizer:
        scout = _ct_slice(
            study,
            series_uid,
            z=0.0,
            level=500,
            instance=0,
            orientation=CORONAL,
            image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
            position=(-160.0, 0.0, 100.0),
        )
        paths.append(_save(scout, folder / "ct-scout.dcm"))
    for extra in range(second_orientation):
        sagittal = _ct_slice(
            study,
            series_uid,
            z=0.0,
            level=700,
            instance=200 + extra,
            orientation=SAGITTAL,
            position=(-20.0 + 10.0 * extra, -160.0, 100.0),
        )
        paths.append(_save(sagittal, folder / f"ct-sag-{extra}.dcm"))
    return WrittenSeries(series_uid, paths, slices, positions)


def write_mr_series(folder: Path, study: Study, *, slices: int = 6) -> WrittenSeries:
    """A sagittal MR series with a stored window, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid(UID_ROOT)
    paths = []
    positions = [float(x) for x in range(-15, -15 + 6 * slices, 6)][:slices]
    for index, x in enumerate(positions):
        dataset = _base(MRImageStorage, study, series_uid, "MR", 5)
        dataset.SeriesDescription = "T2 sag"
        dataset.InstanceNumber = index + 1
        dataset.ImagePositionPatient = [x, -120.0, 120.0]
        dataset.ImageOrientationPatient = list(SAGITTAL)
        dataset.PixelSpacing = [4.0, 4.0]
        dataset.WindowCenter = 600
        dataset.WindowWidth = 1200
        _pixels(dataset, slice_image(200 + 20 * index) + 1000)
        paths.append(_save(dataset, folder / f"mr-{index + 1:03d}.dcm"))
    return WrittenSeries(series_uid, paths, slices, positions)


def write_enhanced_ct(path: Path, study: Study, *, frames: int = 5) -> WrittenSeries:
    """One enhanced CT object whose frames are placed by PerFrameFunctionalGroupsSequence.

    The frames are stored in reverse spatial order, so placing them by
    InstanceNumber or frame number would be wrong.
    """
    series_uid = generate_uid(UID_ROOT)
    dataset = _base(EnhancedCTImageStorage, study, series_uid, "CT", 9)
    dataset.SeriesDescription = "Enhanced abdomen"
    dataset.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    dataset.InstanceNumber = 1
    dataset.NumberOfFrames = frames
    positions = [100.0 + 2.5 * index for index in range(frames)]
    per_frame = []
    stored = []
    for frame in range(frames):
        spatial_index = frames - 1 - frame  # reversed on purpose
        group = Dataset()
        plane = Dataset()
        plane.ImagePositionPatient = [-80.0, -80.0, positions[spatial_index]]
        group.PlanePositionSequence = [plane]
        per_frame.append(group)
        stored.append(slice_image(slice_level(spatial_index)))
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = list(AXIAL)
    shared.PlaneOrientationSequence = [orientation]
    measures = Dataset()
    measures.PixelSpacing = [2.5, 2.5]
    measures.SliceThickness = 2.5
    shared.PixelMeasuresSequence = [measures]
    transformation = Dataset()
    transformation.RescaleIntercept = -1024
    transformation.RescaleSlope = 1
    transformation.RescaleType = "HU"
    shared.PixelValueTransformationSequence = [transformation]
    dataset.SharedFunctionalGroupsSequence = [shared]
    dataset.PerFrameFunctionalGroupsSequence = per_frame
    _pixels(dataset, np.stack(stored))
    _save(dataset, path)
    return WrittenSeries(series_uid, [path], frames, positions)


def write_burned_in_capture(path: Path, study: Study) -> Dataset:
    """A secondary capture whose pixels carry the patient's name and ID, as old devices did."""
    picture = mediagen.text_image(
        ["OKONKWO CHIDINMA", "MRN-40417", "LEFT WRIST PA"], (900, 330)
    ).convert("L")
    dataset = _base(SecondaryCaptureImageStorage, study, generate_uid(UID_ROOT), "OT", 20)
    dataset.SeriesDescription = "Scanned request"
    dataset.InstanceNumber = 1
    dataset.ConversionType = "WSD"
    grey = np.asarray(picture)
    dataset.Rows, dataset.Columns = grey.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = grey.tobytes()
    _save(dataset, path)
    return dataset


def write_burned_in_ct(path: Path, study: Study) -> Dataset:
    """A CT slice, 12 bits stored signed (air below zero), with the patient's name burned in.

    Stored values are Hounsfield units (intercept 0): white paper is 2000 HU,
    the ink -1000, so the text's pixels are negative.
    """
    grey = np.asarray(
        mediagen.text_image(["OKONKWO CHIDINMA", "MRN-40417"], (900, 256)).convert("L")
    )
    stored = (grey.astype(np.int32) * 3000 // 255 - 1000).astype(np.int16)
    dataset = _ct_slice(study, generate_uid(UID_ROOT), z=0.0, level=0, instance=1)
    dataset.RescaleIntercept = 0
    dataset.Rows, dataset.Columns = stored.shape
    dataset.BitsStored = 12
    dataset.HighBit = 11
    dataset.PixelData = stored.tobytes()
    _save(dataset, path)
    return dataset


def write_burned_in_cine(path: Path, study: Study, order: str = "ABAAB") -> Dataset:
    """A multi-frame 8-bit capture whose frames repeat: ``order`` names each frame's picture.

    Every picture carries the patient's name; "A" adds the MRN, "B" a body part.
    """
    pictures = {
        "A": ["OKONKWO CHIDINMA", "MRN-40417"],
        "B": ["OKONKWO CHIDINMA", "RIGHT ANKLE"],
    }
    frames = [
        np.asarray(mediagen.text_image(pictures[name], (900, 220)).convert("L")) for name in order
    ]
    dataset = _base(
        MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
        study,
        generate_uid(UID_ROOT),
        "OT",
        21,
    )
    dataset.SeriesDescription = "Scanned requests"
    dataset.InstanceNumber = 1
    dataset.NumberOfFrames = len(frames)
    dataset.Rows, dataset.Columns = frames[0].shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = np.stack(frames).tobytes()
    _save(dataset, path)
    return dataset


# Where the generated ultrasound's image lies: left, top, right, bottom (inclusive).
ULTRASOUND_REGION = (160, 140, 479, 459)


def write_ultrasound(path: Path, study: Study) -> Dataset:
    """An RGB ultrasound image: a smooth scan inside its one region, text outside it.

    The banner above the region names the patient and the MRN (identifiers)
    and the probe (not one): the layout of a real scanner's screen.
    """
    banner = mediagen.text_image(
        ["OKONKWO CHIDINMA", "MRN-40417  C5-1 ABDOMEN"],
        (640, 140),
        background=(0, 0, 0),
        ink=(255, 255, 255),
        font_size=36,
    )
    rgb = np.zeros((480, 640, 3), dtype=np.uint8)
    rgb[:140] = np.asarray(banner)
    left, top, right, bottom = ULTRASOUND_REGION
    y, x = np.mgrid[top : bottom + 1, left : right + 1]
    depth = np.hypot(x - (left + right) / 2, y - top)  # a fan's smooth fall-off with depth
    scan = np.clip(220 - depth * 0.6, 20, 255).astype(np.uint8)
    rgb[top : bottom + 1, left : right + 1] = np.stack([scan, scan, scan // 2 + 40], axis=-1)
    dataset = _base(UltrasoundImageStorage, study, generate_uid(UID_ROOT), "US", 30)
    dataset.SeriesDescription = "Abdomen"
    dataset.InstanceNumber = 1
    region = Dataset()
    region.RegionSpatialFormat = 1  # 2D
    region.RegionDataType = 1  # tissue
    region.RegionFlags = 0
    region.RegionLocationMinX0, region.RegionLocationMinY0 = left, top
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = right, bottom
    region.PhysicalUnitsXDirection = region.PhysicalUnitsYDirection = 3  # cm
    region.PhysicalDeltaX = region.PhysicalDeltaY = 0.05
    dataset.SequenceOfUltrasoundRegions = [region]
    dataset.Rows, dataset.Columns = rgb.shape[:2]
    dataset.SamplesPerPixel = 3
    dataset.PhotometricInterpretation = "RGB"
    dataset.PlanarConfiguration = 0
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = rgb.tobytes()
    _save(dataset, path)
    return dataset


def write_dicomdir(root: Path, paths: Sequence[Path]) -> Path:
    """A DICOMDIR over ``paths`` (which must lie under ``root``), written by pydicom's FileSet."""
    from pydicom.fileset import FileSet

    staging = FileSet()
    for path in paths:
        staging.add(pydicom.dcmread(path))
    written = root / "fileset"
    staging.write(written)
    staging._stage["t"].cleanup()  # its staging folder; FileSet has no close()
    return written / "DICOMDIR"


def _save(dataset: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path
