"""Series assembly: a series' instances put in spatial order, its oddities named.

InstanceNumber is what the modality happened to count; it is not where a
slice is. Here every image is placed by ImagePositionPatient projected on the
slice normal (the cross product of ImageOrientationPatient's row and column
cosines), which is how viewers and MONAI Deploy order a volume. Around that:

* a series whose orientation changes is split into stacks, one per
  orientation (a scout acquired in the series, a second plane);
* localizers (ImageType LOCALIZER, or a handful of images orthogonal to the
  main stack) are kept out of every stack and listed;
* two images at one position are resolved by AcquisitionNumber: several
  complete acquisitions (each at least half the size of the largest) become
  one stack each; otherwise a repeated position keeps the latest acquisition
  and sets the other aside, named;
* the spacing along the normal is checked, and a gap (a missing slice) noted;
* enhanced multi-frame objects are placed frame by frame;
* projection images (radiographs, ultrasound, secondary captures) have no
  patient geometry and are ordered by InstanceNumber, which for them is the
  only order there is.

A series that cannot be put in order at all (geometry on some images and not
others, a degenerate orientation, images of different sizes in one stack)
raises :class:`~worker.errors.SeriesAssemblyError` with the reason.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

from worker import errors, pictures
from worker.imaging.headers import InstanceHeader, Vector

# Two orientations are one when their normals differ by less than about 1.6°.
_SAME_ORIENTATION_DOT = 0.9996
# A stack no more than this share of the main one, at right angles to it, is localizers.
_LOCALIZER_MAX_SHARE = 0.1
_LOCALIZER_MAX_IMAGES = 3
_ORTHOGONAL_DOT = 0.1
# Positions closer than this (mm) along the normal are the same position.
_SAME_POSITION_MM = 0.01
# Spacing is regular when every step is within this share of the median (or 0.1 mm).
_SPACING_TOLERANCE = 0.1


@dataclass(frozen=True)
class Slice:
    """One image of the series: an instance, or one frame of a multi-frame instance."""

    member: int  # index of its instance among the series' members
    sop_instance_uid: str
    frame: int  # 0-based frame within the instance
    rows: int
    columns: int
    position: Vector | None
    orientation: tuple[float, ...] | None
    instance_number: int | None
    acquisition_number: int | None
    offset_mm: float | None = None  # along its stack's normal, once placed

    def described(self) -> str:
        frame = f" frame {self.frame + 1}" if self.frame else ""
        return f"{self.sop_instance_uid}{frame}"


@dataclass(frozen=True)
class Spacing:
    """How evenly a stack's slices are spaced along its normal."""

    median_mm: float
    smallest_mm: float
    largest_mm: float
    regular: bool
    gaps_after: tuple[int, ...]  # 0-based slice indexes followed by a gap

    def as_json(self) -> dict[str, object]:
        return {
            "median_mm": round(self.median_mm, 4),
            "smallest_mm": round(self.smallest_mm, 4),
            "largest_mm": round(self.largest_mm, 4),
            "regular": self.regular,
            "gaps_after": list(self.gaps_after),
        }


@dataclass
class Stack:
    """Slices of one orientation (and one acquisition where positions repeat), in order."""

    slices: list[Slice]
    normal: Vector | None  # None for projection images
    acquisition_number: int | None = None
    spacing: Spacing | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "images": len(self.slices),
            "normal": [round(v, 5) for v in self.normal] if self.normal else None,
            "acquisition_number": self.acquisition_number,
            "first_offset_mm": _rounded(self.slices[0].offset_mm),
            "last_offset_mm": _rounded(self.slices[-1].offset_mm),
            "spacing": self.spacing.as_json() if self.spacing else None,
        }


@dataclass
class AssembledSeries:
    """A series in order: its stacks, and everything left out of them, with why."""

    stacks: list[Stack] = field(default_factory=list)
    localizers: list[Slice] = field(default_factory=list)
    set_aside: list[tuple[Slice, str]] = field(default_factory=list)
    without_pixels: list[str] = field(default_factory=list)  # SOP Instance UIDs
    notes: list[str] = field(default_factory=list)
    geometry: str = "volume"  # or "projection": no patient geometry to order by

    @property
    def image_count(self) -> int:
        return sum(len(stack.slices) for stack in self.stacks)

    def as_json(self) -> dict[str, object]:
        return {
            "geometry": self.geometry,
            "stacks": [stack.as_json() for stack in self.stacks],
            "localizers": [s.described() for s in self.localizers],
            "set_aside": [{"image": s.described(), "why": why} for s, why in self.set_aside],
            "without_pixels": self.without_pixels,
            "notes": self.notes,
        }


def assemble(headers: Sequence[InstanceHeader]) -> AssembledSeries:
    """Put the series' instances (``headers``, its members in order) into stacks."""
    if not headers:
        raise errors.SeriesAssemblyError("the series has no instances")
    assembled = AssembledSeries()
    slices: list[Slice] = []
    for member, header in enumerate(headers):
        if not header.has_pixels:
            assembled.without_pixels.append(header.sop_instance_uid)
        else:
            slices.extend(_slices_of(member, header))
    if not slices:
        assembled.notes.append("no instance of the series has pixel data")
        return assembled
    localizer_members = {i for i, h in enumerate(headers) if "LOCALIZER" in h.image_type}
    assembled.localizers = [s for s in slices if s.member in localizer_members]
    images = [s for s in slices if s.member not in localizer_members]
    if not images:
        assembled.notes.append("the series holds only localizers")
        return assembled
    placed = [s for s in images if s.position is not None and s.orientation is not None]
    if not placed:
        assembled.geometry = "projection"
        assembled.stacks = [_projection_stack(images)]
        assembled.notes.append("no patient geometry (projection images): ordered by InstanceNumber")
        return assembled
    if len(placed) != len(images):
        raise errors.SeriesAssemblyError(
            f"{len(images) - len(placed)} of {len(images)} images have no "
            "ImagePositionPatient/ImageOrientationPatient, so the series cannot be put "
            "in spatial order"
        )
    groups = _by_orientation(placed)
    main = max(groups, key=lambda group: len(group[1]))
    for normal, members in groups:
        if members is not main[1] and _looks_like_localizers(normal, members, main):
            assembled.localizers.extend(members)
            assembled.notes.append(
                f"{len(members)} image(s) orthogonal to the main stack kept out as localizers"
            )
            continue
        for stack in _stacks_of(normal, members, assembled):
            assembled.stacks.append(stack)
    if len(assembled.stacks) > 1:
        assembled.notes.append(f"split into {len(assembled.stacks)} stacks")
    return assembled


def _slices_of(member: int, header: InstanceHeader) -> list[Slice]:
    """An instance's images: one, or one per frame (placed by its functional groups)."""
    frames = max(header.number_of_frames, 1)
    slices = []
    for frame in range(frames):
        position, orientation = header.position, header.orientation
        if frame < len(header.frame_positions) and header.frame_positions[frame] is not None:
            position = header.frame_positions[frame]
        elif frames > 1:
            position = None  # a cine loop: the frames share one place, in time order
        if frame < len(header.frame_orientations) and header.frame_orientations[frame]:
            orientation = header.frame_orientations[frame]
        slices.append(
            Slice(
                member,
                header.sop_instance_uid,
                frame,
                header.rows,
                header.columns,
                position,
                orientation,
                header.instance_number,
                header.acquisition_number,
            )
        )
    return slices


def _projection_stack(images: list[Slice]) -> Stack:
    def order(image: Slice) -> tuple[bool, int, str, int]:
        number = image.instance_number
        return (number is None, number or 0, image.sop_instance_uid, image.frame)

    return Stack(sorted(images, key=order), normal=None)


def slice_normal(orientation: Sequence[float]) -> Vector:
    """The unit normal of a plane given by ImageOrientationPatient (row × column cosines)."""
    if len(orientation) != 6:
        raise errors.SeriesAssemblyError(
            f"ImageOrientationPatient has {len(orientation)} values, not 6"
        )
    rx, ry, rz, cx, cy, cz = orientation
    normal = (ry * cz - rz * cy, rz * cx - rx * cz, rx * cy - ry * cx)
    length = sum(v * v for v in normal) ** 0.5
    if length < 0.5:  # the cosines should be unit and at right angles: |n| = 1
        raise errors.SeriesAssemblyError(
            f"ImageOrientationPatient {list(orientation)} does not describe a plane "
            "(its row and column directions are not at right angles)"
        )
    return (normal[0] / length, normal[1] / length, normal[2] / length)


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _by_orientation(placed: list[Slice]) -> list[tuple[Vector, list[Slice]]]:
    """Images grouped by plane orientation, in the order each orientation first appears."""
    groups: list[tuple[Vector, list[Slice]]] = []
    for image in placed:
        assert image.orientation is not None
        normal = slice_normal(image.orientation)
        for known, members in groups:
            if abs(_dot(known, normal)) >= _SAME_ORIENTATION_DOT:
                members.append(image)
                break
        else:
            groups.append((normal, [image]))
    return groups


def _looks_like_localizers(
    normal: Vector, members: list[Slice], main: tuple[Vector, list[Slice]]
) -> bool:
    few = len(members) <= max(_LOCALIZER_MAX_IMAGES, _LOCALIZER_MAX_SHARE * len(main[1]))
    return few and len(members) < len(main[1]) and abs(_dot(normal, main[0])) < _ORTHOGONAL_DOT


def _stacks_of(normal: Vector, members: list[Slice], assembled: AssembledSeries) -> list[Stack]:
    """One orientation's images placed along ``normal``: one stack, or one per acquisition."""
    placed = sorted(
        (_with_offset(image, normal) for image in members),
        key=lambda image: (
            image.offset_mm,
            image.acquisition_number or 0,
            image.instance_number or 0,
        ),
    )
    if not _has_repeats(placed):
        return [_checked_stack(placed, normal, None, assembled)]
    by_acquisition: dict[int | None, list[Slice]] = defaultdict(list)
    for image in placed:
        by_acquisition[image.acquisition_number].append(image)
    largest = max(len(images) for images in by_acquisition.values())
    whole_acquisitions = len(by_acquisition) > 1 and all(
        len(images) * 2 >= largest and not _has_repeats(images)
        for images in by_acquisition.values()
    )
    if whole_acquisitions:
        assembled.notes.append(
            f"positions repeat across {len(by_acquisition)} acquisitions: one stack each"
        )
        return [
            _checked_stack(images, normal, number, assembled)
            for number, images in sorted(by_acquisition.items(), key=lambda kv: kv[0] or 0)
        ]
    return [_checked_stack(_without_duplicates(placed, assembled), normal, None, assembled)]


def _with_offset(image: Slice, normal: Vector) -> Slice:
    assert image.position is not None
    return Slice(**{**image.__dict__, "offset_mm": _dot(image.position, normal)})


def _has_repeats(placed: list[Slice]) -> bool:
    return any(_same_place(a, b) for a, b in itertools.pairwise(placed))


def _same_place(a: Slice, b: Slice) -> bool:
    assert a.offset_mm is not None and b.offset_mm is not None
    return abs(a.offset_mm - b.offset_mm) < _SAME_POSITION_MM


def _without_duplicates(placed: list[Slice], assembled: AssembledSeries) -> list[Slice]:
    """One image per position: the latest acquisition (then instance) kept, the rest set aside."""
    kept: list[Slice] = []
    for image in placed:
        if kept and _same_place(kept[-1], image):
            pair = (kept.pop(), image)
            winner = max(pair, key=lambda s: (s.acquisition_number or 0, s.instance_number or 0))
            loser = pair[0] if winner is pair[1] else pair[1]
            assembled.set_aside.append(
                (
                    loser,
                    f"same position as {winner.described()} (kept: acquisition "
                    f"{winner.acquisition_number}, instance {winner.instance_number})",
                )
            )
            image = winner
        kept.append(image)
    return kept


def _checked_stack(
    images: list[Slice], normal: Vector, acquisition: int | None, assembled: AssembledSeries
) -> Stack:
    sizes = {(image.rows, image.columns) for image in images}
    if len(sizes) > 1:
        raise errors.SeriesAssemblyError(
            f"images of different sizes ({', '.join(f'{r}x{c}' for r, c in sorted(sizes))}) "
            "lie in one stack"
        )
    stack = Stack(images, normal, acquisition, _spacing(images))
    if stack.spacing is not None and not stack.spacing.regular:
        where = ", ".join(f"after slice {i + 1}" for i in stack.spacing.gaps_after) or "uneven"
        assembled.notes.append(
            f"irregular spacing ({stack.spacing.smallest_mm:.3g}–{stack.spacing.largest_mm:.3g} mm, "
            f"median {stack.spacing.median_mm:.3g}): gap {where}"
        )
    return stack


def _spacing(images: list[Slice]) -> Spacing | None:
    offsets = [image.offset_mm for image in images if image.offset_mm is not None]
    if len(offsets) < 2:
        return None
    steps = [b - a for a, b in itertools.pairwise(offsets)]
    typical = median(steps)
    tolerance = max(0.1, _SPACING_TOLERANCE * typical)
    regular = all(abs(step - typical) <= tolerance for step in steps)
    gaps = tuple(i for i, step in enumerate(steps) if step > typical + tolerance)
    return Spacing(typical, min(steps), max(steps), regular, gaps)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def sample(assembled: AssembledSeries, count: int) -> list[tuple[int, int]]:
    """``count`` images to show, as (stack, slice) indexes, spread through every stack.

    Each stack gets a share by its size (at least one), evenly spaced in
    spatial order with its first and last slice included.
    """
    stacks = assembled.stacks
    if not stacks or count < 1:
        return []
    total = assembled.image_count
    exact = [count * len(stack.slices) / total for stack in stacks]
    shares = [max(1, int(share)) for share in exact]
    # What rounding down left over goes to the largest remainders (Hamilton's method).
    by_remainder = sorted(range(len(stacks)), key=lambda i: exact[i] - int(exact[i]), reverse=True)
    for index in by_remainder[: max(count - sum(shares), 0)]:
        shares[index] += 1
    while sum(shares) > max(count, len(stacks)):
        shares[shares.index(max(shares))] -= 1
    return [
        (stack_index, slice_index)
        for stack_index, (stack, share) in enumerate(zip(stacks, shares, strict=True))
        for slice_index in pictures.evenly_spaced(len(stack.slices), share)
    ]
