"""Frames decoded from whatever transfer syntax an archive holds.

pydicom decodes through its plug-ins (GDCM, pyjpegls, pylibjpeg with
OpenJPEG and RLE, Pillow: all permissively licensed). One common syntax
escapes them: 12-bit JPEG Extended (Process 2 and 4), which old CT and NM
scanners wrote and which only the GPL-3.0 pylibjpeg-libjpeg reads in process.
For that, and for anything else the plug-ins refuse, DCMTK's command-line
decompressors (BSD-licensed, a separate process run through
:mod:`worker.tools`) write an uncompressed copy that pydicom then reads. The
copy lives in a scratch folder removed with the decoder.

Only when neither reads the pixels is the syntax unsupported: the extractors
then review the item from its header, saying so.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np
import pydicom
import pydicom.pixels
from pydicom import uid

from worker import errors, tools
from worker.config import MediaSettings

# Which DCMTK tool decompresses which syntax.
_DCMTK_TOOLS: dict[str, str] = {
    uid.JPEGBaseline8Bit: "dcmdjpeg",
    uid.JPEGExtended12Bit: "dcmdjpeg",
    uid.JPEGLossless: "dcmdjpeg",
    uid.JPEGLosslessSV1: "dcmdjpeg",
    uid.JPEGLSLossless: "dcmdjpls",
    uid.JPEGLSNearLossless: "dcmdjpls",
    uid.RLELossless: "dcmdrle",
}

# What pydicom raises when no installed plug-in decodes a syntax.
_NO_DECODER = (RuntimeError, NotImplementedError)


class FrameDecoder:
    """Decodes frames of DICOM files, falling back to DCMTK; use as a context manager."""

    def __init__(self, media: MediaSettings) -> None:
        self._media = media
        self._scratch: Path | None = None
        self._copies: dict[Path, Path] = {}

    def __enter__(self) -> FrameDecoder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def frame(self, path: Path, dataset: pydicom.Dataset, index: int) -> np.ndarray:
        """Frame ``index`` (0-based) of the file at ``path``, decoded alone.

        Raises :class:`~worker.errors.UnsupportedTypeError` when no decoder
        reads its syntax; a damaged stream raises what pydicom raises, for
        the caller to map.
        """
        if dataset.file_meta.get("TransferSyntaxUID") == uid.DeflatedExplicitVRLittleEndian:
            return _deflated_frame(path, index)
        source = self._copies.get(path, path)
        try:
            return pydicom.pixels.pixel_array(source, index=index)
        except _NO_DECODER as exc:
            if source is not path:
                raise
            copy = self._uncompressed_copy(path, dataset, exc)
            return pydicom.pixels.pixel_array(copy, index=index)

    def frames(self, path: Path, dataset: pydicom.Dataset) -> Iterator[np.ndarray]:
        """Every frame of the file at ``path``, in order, for a pass that reads them all.

        ``pydicom.pixels.iter_pixels`` reads the file once and decodes one
        frame at a time, where :meth:`frame` per index would parse the file
        again for each. Raises as :meth:`frame` does, from the ``next()`` that
        meets the problem; close the iterator (``contextlib.closing``) when
        stopping early, so the file it holds is let go.
        """
        if dataset.file_meta.get("TransferSyntaxUID") == uid.DeflatedExplicitVRLittleEndian:
            yield from _deflated_frames(path)
            return
        source = self._copies.get(path, path)
        decoded = pydicom.pixels.iter_pixels(source)
        try:
            first = next(decoded)
        except _NO_DECODER as exc:
            if source is not path:
                raise
            decoded = pydicom.pixels.iter_pixels(self._uncompressed_copy(path, dataset, exc))
            first = next(decoded)
        try:
            yield first
            yield from decoded
        finally:
            decoded.close()  # the file it holds open

    def _uncompressed_copy(
        self, path: Path, dataset: pydicom.Dataset, refused: BaseException
    ) -> Path:
        syntax = dataset.file_meta.get("TransferSyntaxUID")
        syntax_name = getattr(syntax, "name", None) or "an unknown transfer syntax"
        tool = _DCMTK_TOOLS.get(str(syntax or ""))
        if tool is None:
            raise errors.UnsupportedTypeError(
                f"the DICOM pixel data is encoded as {syntax_name}, which no installed decoder reads"
            ) from refused
        executable = tools.find_tool(
            str(self._media.dcmtk_dir / tool) if self._media.dcmtk_dir else tool,
            tool,
            package="dcmtk",
        )
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="sieve-dicom-"))
        target = self._scratch / f"{len(self._copies):05d}.dcm"
        completed = tools.run_tool(
            [executable, "--write-xfer-little", str(path), str(target)],
            tool=tool,
            timeout_s=self._media.tool_timeout_s,
        )
        if completed.returncode != 0 or not target.is_file():
            reason = (completed.stderr.strip().splitlines() or ["no output"])[-1]
            raise errors.UnsupportedTypeError(
                f"the DICOM pixel data is encoded as {syntax_name}; neither the installed "
                f"decoders nor {tool} read it ({reason})"
            ) from refused
        self._copies[path] = target
        return target


def _deflated_frame(path: Path, index: int) -> np.ndarray:
    """A frame of a deflated file: the whole dataset is compressed, so it is read whole."""
    return list(_deflated_frames(path))[index]


def _deflated_frames(path: Path) -> Iterator[np.ndarray]:
    dataset = pydicom.dcmread(path)
    pixels = dataset.pixel_array
    if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
        yield from pixels
    else:
        yield pixels
