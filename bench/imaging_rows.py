"""Imaging rows: header indexing, header de-identification, series assembly.

``dicom_index``: instances/s through Sieve's header-only pass (pixel data
skipped, geometry and identifiers read) against a bare
``pydicom.dcmread(stop_before_pixels=True)`` loop over the same 512x512 CT
slices. The goal is at least 500 instances/s per core, the single-thread
figure of the fastest open anonymiser.

``dicom_deid``: instances/s de-identified by the Basic Profile with modified
dates (read, every element through the Annex E table, HMAC UIDs, written)
against bare pydicom reading and writing the same files unchanged.

``series_assemble``: a 300-slice series indexed, assembled in space and
sampled (8 slices decoded and rendered through the packed CT windows)
against bare pydicom reading every header and decoding the same 8 slices.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pydicom
import pydicom.pixels

from bench.rows import Row, rate_row
from tests import dicomgen
from worker.extractors.dicom import dicom_identifiers
from worker.imaging import deid, headers, rendering, series
from worker.imaging.deid_profile import Profile

SLICE_SIZE = 512


def _series(scratch: Path, slices: int) -> list[Path]:
    return dicomgen.write_ct_series(
        scratch / f"series-{slices}",
        dicomgen.new_study(),
        slices=slices,
        localizer=False,
        duplicate=False,
        size=SLICE_SIZE,
    ).paths


def dicom_index(paths: list[Path]) -> Row:
    def bare() -> None:
        for path in paths:
            pydicom.dcmread(path, stop_before_pixels=True)

    def through_sieve() -> None:
        for path in paths:
            headers.read_header(path)

    notes = {"instances": len(paths), "matrix": f"{SLICE_SIZE}x{SLICE_SIZE}", "goal": ">=500/s"}
    return rate_row("dicom_index", len(paths), through_sieve, bare, "instances/s", notes)


def dicom_deid(scratch: Path, paths: list[Path]) -> Row:
    profile = Profile.parse("basic,retain-dates-modified")
    pseudonyms = deid.Pseudonyms(b"bench-secret")

    def bare() -> None:
        with tempfile.TemporaryDirectory(dir=scratch) as out:
            for index, path in enumerate(paths):
                pydicom.dcmread(path).save_as(Path(out) / f"{index}.dcm")

    def through_sieve() -> None:
        with tempfile.TemporaryDirectory(dir=scratch) as out:
            for index, path in enumerate(paths):
                dataset = pydicom.dcmread(path)
                deid.deidentify(dataset, profile, pseudonyms, dicom_identifiers(dataset))
                dataset.save_as(Path(out) / f"{index}.dcm", enforce_file_format=True)

    notes = {"instances": len(paths), "profile": ",".join(profile.options)}
    return rate_row("dicom_deid", len(paths), through_sieve, bare, "instances/s", notes)


def series_assemble(paths: list[Path], samples: int = 8) -> Row:
    windows = [rendering.CT_WINDOWS[name] for name in ("lung", "soft_tissue", "brain")]

    def bare() -> None:
        datasets = [pydicom.dcmread(path, stop_before_pixels=True) for path in paths]
        step = max(len(datasets) // samples, 1)
        for path in paths[::step][:samples]:
            pydicom.pixels.pixel_array(path)

    def through_sieve() -> None:
        found = [headers.read_header(path).header for path in paths]
        assembled = series.assemble(found)
        for stack_index, slice_index in series.sample(assembled, samples):
            image = assembled.stacks[stack_index].slices[slice_index]
            path = paths[image.member]
            dataset = pydicom.dcmread(path, stop_before_pixels=True)
            rendering.rendered(pydicom.pixels.pixel_array(path), dataset, windows)

    row = rate_row("series_assemble", 1, through_sieve, bare, "series/s")
    row.notes.update(
        {"instances": len(paths), "samples": samples, "sieve_s": round(1 / row.sieve, 3)}
    )
    return row


def imaging(scratch: Path, instances: int) -> list[Row]:
    paths = _series(scratch, instances)
    assemble = paths if instances == 300 else _series(scratch, 300)
    return [dicom_index(paths), dicom_deid(scratch, paths), series_assemble(assemble)]
