"""DICOM series and studies: assembled in space, sampled, rendered by modality.

The item is a manifest of instance files (:mod:`worker.imaging.units`).
Each series is read header by header, put in spatial order
(:mod:`worker.imaging.series`), and a few of its images, evenly spread through
every stack, are decoded (only those frames) and rendered: CT through the
configured standard windows packed as channels, everything else through its
stored VOI window. Each image is a segment that cites exactly which SOP
Instance UID and frame it shows; the item's metadata holds the assembly
(stacks, localizers, what was set aside and why) and the full list shown.

A study item is all its series, fewer images each, after a manifest segment
that lists them (description, modality, counts), so a study-level task sees
the whole examination.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.pixels

from worker import errors, ocr, pictures
from worker.config import LimitSettings, MediaSettings
from worker.extractors import registry
from worker.extractors.base import ExtractedSegment, Extraction, Extractor, SegmentKind
from worker.extractors.dicom import (
    PYDICOM_ERRORS,
    dicom_identifiers,
    pydicom_warnings_logged,
    redact,
)
from worker.imaging import decoding, rendering, series, units
from worker.imaging.headers import InstanceHeader, read_header

logger = logging.getLogger(__name__)


@dataclass
class _SeriesRead:
    """One series of the unit, read and assembled."""

    entry: units.SeriesEntry
    headers: list[InstanceHeader]
    paths: list[Path]
    assembled: series.AssembledSeries
    unreadable: list[str] = field(default_factory=list)  # "hash: why"
    position: int = 0  # the series' place in the manifest: unique, unlike SeriesNumber
    datasets: dict[int, pydicom.Dataset] = field(default_factory=dict)  # headers read, by member

    def dataset(self, member: int) -> pydicom.Dataset:
        """The member's header (pixels left on disk), read once."""
        if member not in self.datasets:
            self.datasets[member] = pydicom.dcmread(self.paths[member], stop_before_pixels=True)
        return self.datasets[member]

    @property
    def first(self) -> InstanceHeader:
        return self.headers[0]

    @property
    def number(self) -> str:
        header = self.first
        return str(header.series_number) if header.series_number is not None else "?"


@registry.register
class DicomUnitExtractor(Extractor):
    """Reads a series or study manifest: assembles, samples and renders its images."""

    name = "dicom-unit"
    version = "1"
    media_types = frozenset(units.UNIT_MEDIA_TYPES.values())
    score = 100

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        """Segments: for a study, its manifest first; then the sampled images of each series.

        Raises :class:`~worker.errors.SeriesAssemblyError` when a series cannot
        be put in order, :class:`~worker.errors.SourceMissingError` when a
        member is not in the store.
        """
        manifest = units.read_manifest(source)
        with pydicom_warnings_logged():
            read = [
                _read_series(source, entry, position)
                for position, entry in enumerate(manifest.series)
            ]
            identifiers = _identifiers(read)
            per_series = media.dicom_study_samples_per_series if manifest.unit == "study" else None
            segments: list[ExtractedSegment] = []
            if manifest.unit == "study":
                segments.append(_manifest_segment(read))
            shown: list[dict[str, Any]] = []
            unreadable_pixels: list[str] = []
            for one in read:
                count = per_series or media.dicom_samples_by_modality.get(
                    one.first.modality, media.dicom_series_samples
                )
                made, why = _series_segments(
                    one, count, len(segments), identifiers, artifacts_dir, limits, media
                )
                if why:
                    unreadable_pixels.append(f"series {one.number}: {why}")
                segments.extend(made)
                shown.extend(
                    {
                        "label": s.label,
                        **{k: s.attributes[k] for k in _PROVENANCE if k in s.attributes},
                    }
                    for s in made
                    if s.kind == SegmentKind.image
                )
        metadata = _metadata(manifest, read, shown)
        if unreadable_pixels:
            metadata["pixels_unreadable"] = unreadable_pixels
        return Extraction(
            extractor=self.qualified_name(),
            media_type=manifest.media_type,
            segments=segments,
            metadata=metadata,
            identifiers=identifiers,
        )


_PROVENANCE = ("series_instance_uid", "sop_instance_uid", "frame")


def images_shown(segments: list[ExtractedSegment]) -> list[dict[str, Any]]:
    """Which instance and frame each image shows; a projection, every instance it spans."""
    shown: list[dict[str, Any]] = []
    for segment in segments:
        if segment.kind != SegmentKind.image:
            continue
        attributes = segment.attributes
        if "sop_instance_uids" in attributes:
            shown.extend(
                {"label": segment.label, "sop_instance_uid": uid, "projection": "mip"}
                for uid in attributes["sop_instance_uids"]
            )
        else:
            shown.append(
                {
                    "label": segment.label,
                    **{k: attributes[k] for k in _PROVENANCE if k in attributes},
                }
            )
    return shown


def _read_series(source: Path, entry: units.SeriesEntry, position: int) -> _SeriesRead:
    headers: list[InstanceHeader] = []
    paths: list[Path] = []
    unreadable: list[str] = []
    for member in entry.members:
        path = units.member_path(source, member)
        if not path.is_file():
            raise errors.SourceMissingError(
                f"instance {member.sop_instance_uid} of series {entry.series_instance_uid} "
                "is missing from the content store"
            )
        try:
            headers.append(read_header(path).header)
            paths.append(path)
        except errors.CorruptFileError as exc:
            unreadable.append(f"{member.sha256[:12]}: {exc.message}")
    if not headers:
        raise errors.SeriesAssemblyError(
            f"no instance of series {entry.series_instance_uid} can be read: {'; '.join(unreadable)}"
        )
    assembled = series.assemble(headers)
    for why in unreadable:
        assembled.notes.append(f"instance file {why}")
    return _SeriesRead(entry, headers, paths, assembled, unreadable, position)


def _identifiers(read: list[_SeriesRead]) -> dict[str, Any]:
    """The patient's and staff's attributes, from the unit's first instance (kept apart)."""
    dataset = pydicom.dcmread(read[0].paths[0], stop_before_pixels=True)
    return dicom_identifiers(dataset)


def _manifest_segment(read: list[_SeriesRead]) -> ExtractedSegment:
    lines = [f"Study of {len(read)} series:"]
    for one in read:
        header, assembled = one.first, one.assembled
        description = f" {header.series_description!r}" if header.series_description else ""
        lines.append(
            f"- series {one.number}: {header.modality or 'unknown modality'}{description}, "
            f"{len(one.headers)} instance(s), {assembled.image_count} image(s) in "
            f"{len(assembled.stacks)} stack(s), {len(assembled.localizers)} localizer(s)"
        )
    return ExtractedSegment(
        kind=SegmentKind.part, index=0, label="study manifest", text="\n".join(lines)
    )


def _series_segments(
    one: _SeriesRead,
    count: int,
    first_index: int,
    identifiers: dict[str, Any],
    artifacts_dir: Path,
    limits: LimitSettings,
    media: MediaSettings,
) -> tuple[list[ExtractedSegment], str | None]:
    """The sampled images of one series as segments (and why there are none, if so)."""
    header = one.first
    chosen = series.sample(one.assembled, count)
    ct_windows = (
        [rendering.CT_WINDOWS[name] for name in media.dicom_ct_windows]
        if header.modality == "CT"
        else []
    )
    ocr_wanted = header.modality not in media.dicom_ocr_skip_modalities
    segments: list[ExtractedSegment] = []
    damaged: list[str] = []
    with decoding.FrameDecoder(media) as decoder:
        try:
            for stack_index, slice_index in chosen:
                image = one.assembled.stacks[stack_index].slices[slice_index]
                path = one.paths[image.member]
                pictures.check_pixel_count(
                    image.columns, image.rows, limits, f"each image of series {one.number}"
                )
                dataset = one.dataset(image.member)
                try:
                    pixels = _decoded(decoder, path, dataset, image.frame)
                except errors.CorruptFileError as exc:
                    damaged.append(exc.message)  # the next sample may well decode
                    continue
                segments.append(
                    _image_segment(
                        one,
                        stack_index,
                        slice_index,
                        rendering.rendered(pixels, dataset, ct_windows, image.frame),
                        _label(one, stack_index, slice_index),
                        first_index + len(segments),
                        ct_windows,
                        identifiers if ocr_wanted else None,
                        artifacts_dir,
                        media,
                    )
                )
            if media.dicom_projection == "mip":
                segments.extend(
                    _projections(
                        one, decoder, ct_windows, first_index + len(segments), artifacts_dir
                    )
                )
        except errors.UnsupportedTypeError as exc:
            return [_header_segment(one, first_index, exc.message)], exc.message
    one.assembled.notes.extend(damaged)
    if damaged and not segments:
        raise errors.CorruptFileError(
            f"no sampled image of series {one.number} could be decoded: {damaged[0]}"
        )
    return segments, None


def _decoded(
    decoder: decoding.FrameDecoder, path: Path, dataset: pydicom.Dataset, frame: int
) -> np.ndarray:
    """One frame of one instance, decoded alone from the file."""
    try:
        return decoder.frame(path, dataset, frame)
    except PYDICOM_ERRORS as exc:
        raise errors.CorruptFileError(
            f"frame {frame + 1} of instance {dataset.get('SOPInstanceUID', '?')} cannot be "
            f"decoded (damaged or truncated): {exc}"
        ) from exc


def _label(one: _SeriesRead, stack_index: int, slice_index: int) -> str:
    stacks = one.assembled.stacks
    stack = stacks[stack_index]
    noun = "image" if stack.normal is None else "slice"
    where = f" stack {stack_index + 1}" if len(stacks) > 1 else ""
    return f"series {one.number}{where} {noun} {slice_index + 1}/{len(stack.slices)}"


def _image_segment(
    one: _SeriesRead,
    stack_index: int,
    slice_index: int,
    picture: Any,
    label: str,
    index: int,
    ct_windows: list[rendering.Window],
    identifiers: dict[str, Any] | None,
    artifacts_dir: Path,
    media: MediaSettings,
) -> ExtractedSegment:
    stack = one.assembled.stacks[stack_index]
    image = stack.slices[slice_index]
    artifact_name = f"series{one.position + 1:03d}-{stack_index + 1}-{slice_index + 1:05d}.png"
    png = pictures.save_png(picture, artifacts_dir / artifact_name)
    text = _caption(one, stack, image, slice_index, ct_windows)
    attributes: dict[str, Any] = {
        "width": picture.width,
        "height": picture.height,
        "series_instance_uid": one.entry.series_instance_uid,
        "sop_instance_uid": image.sop_instance_uid,
        "frame": image.frame + 1,
        "stack": stack_index + 1,
    }
    if image.offset_mm is not None:
        attributes["offset_mm"] = round(image.offset_mm, 3)
    if identifiers is not None:
        burned_in, ocr_attributes = ocr.segment_text(png, media)
        attributes.update(ocr_attributes)
        if not media.dicom_identifiers_in_prompt:
            burned_in = redact(burned_in, identifiers)
        if burned_in.strip():
            text += f"\nText in the image: {burned_in}"
    return ExtractedSegment(
        kind=SegmentKind.image,
        index=index,
        label=label,
        text=text,
        artifact_path=artifact_name,
        attributes=attributes,
    )


def _caption(
    one: _SeriesRead,
    stack: series.Stack,
    image: series.Slice,
    slice_index: int,
    ct_windows: list[rendering.Window],
) -> str:
    header = one.first
    parts = [f"DICOM {header.modality or 'unknown modality'} series {one.number}"]
    if header.series_description:
        parts.append(repr(header.series_description))
    if header.body_part:
        parts.append(f"body part {header.body_part}")
    where = f"image {slice_index + 1} of {len(stack.slices)}"
    if image.offset_mm is not None:
        where = f"slice {slice_index + 1} of {len(stack.slices)}, {image.offset_mm:.1f} mm along the normal"
    text = ", ".join(parts) + f": {where}."
    if len(ct_windows) > 1:
        colours = ("red", "green", "blue")
        text += (
            " Shown through the "
            + ", ".join(
                f"{w.name.replace('_', ' ')} window ({colours[i]})"
                for i, w in enumerate(ct_windows)
            )
            + "."
        )
    return text


def _projections(
    one: _SeriesRead,
    decoder: decoding.FrameDecoder,
    ct_windows: list[rendering.Window],
    first_index: int,
    artifacts_dir: Path,
) -> list[ExtractedSegment]:
    """Each volumetric stack's maximum intensity projection along its normal."""
    made: list[ExtractedSegment] = []
    for stack_index, stack in enumerate(one.assembled.stacks):
        if stack.normal is None or len(stack.slices) < 2:
            continue
        highest: np.ndarray | None = None
        projected: list[str] = []
        for image in stack.slices:
            dataset = one.dataset(image.member)  # each instance's own rescale
            try:
                stored = _decoded(decoder, one.paths[image.member], dataset, image.frame)
            except errors.CorruptFileError as exc:
                one.assembled.notes.append(f"left out of the MIP: {exc.message}")
                continue
            values = rendering.modality_values(stored, dataset, image.frame)
            highest = values if highest is None else np.maximum(highest, values)
            projected.append(image.sop_instance_uid)
        if highest is None:
            continue
        dataset = one.dataset(stack.slices[0].member)
        assert highest is not None
        picture = (
            rendering.windows_as_channels(highest, ct_windows)
            if ct_windows
            else rendering.voi_rendered(highest, dataset)
        )
        name = f"series{one.position + 1:03d}-{stack_index + 1}-mip.png"
        pictures.save_png(picture, artifacts_dir / name)
        made.append(
            ExtractedSegment(
                kind=SegmentKind.image,
                index=first_index + len(made),
                label=f"series {one.number} stack {stack_index + 1} MIP",
                text=(
                    f"Maximum intensity projection of series {one.number} stack "
                    f"{stack_index + 1} ({len(stack.slices)} slices)."
                ),
                artifact_path=name,
                attributes={
                    "width": picture.width,
                    "height": picture.height,
                    "series_instance_uid": one.entry.series_instance_uid,
                    "projection": "mip",
                    "sop_instance_uids": projected,
                },
            )
        )
    return made


def _header_segment(one: _SeriesRead, index: int, why: str) -> ExtractedSegment:
    header = one.first
    return ExtractedSegment(
        kind=SegmentKind.part,
        index=index,
        label=f"series {one.number} header",
        text=(
            f"DICOM {header.modality or 'unknown modality'} series {one.number} "
            f"{header.series_description!r}, {len(one.headers)} instance(s).\nNote: {why}; the "
            "images were not seen, this is the header alone."
        ),
        attributes={
            "pixels_unreadable": True,
            "series_instance_uid": one.entry.series_instance_uid,
        },
    )


def _metadata(
    manifest: units.UnitManifest, read: list[_SeriesRead], shown: list[dict[str, Any]]
) -> dict[str, Any]:
    first = read[0].first
    return {
        "unit": manifest.unit,
        "modality": first.modality,
        "modalities": sorted({one.first.modality for one in read if one.first.modality}),
        "study_instance_uid": manifest.study_instance_uid,
        "study_date": first.study_date,
        "instances": manifest.instance_count,
        "series": [
            {
                "series_instance_uid": one.entry.series_instance_uid,
                "series_number": one.first.series_number,
                "series_description": one.first.series_description,
                "modality": one.first.modality,
                "body_part": one.first.body_part,
                "instances": len(one.entry.members),
                "unreadable_instances": one.unreadable,
                "assembly": one.assembled.as_json(),
            }
            for one in read
        ],
        "shown": shown,
        "frames_rendered": len(shown),
    }
