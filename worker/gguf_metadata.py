"""The key-value header of a GGUF file, read without loading the model.

``sieve worker`` sizes its processes from a model's architecture (layers, KV
heads, head sizes) before any process loads it. The ``gguf`` package's reader
parses every tensor and vocabulary entry in Python (12 s for a 253 MB model
here); this reads only the header's scalars and skips arrays by their length,
in a fraction of a second for any model size.

Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md (version 2 and 3).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from worker import errors

_MAGIC = b"GGUF"
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9

MetadataValue = int | float | bool | str


class GgufHeader:
    """Scalar metadata of one GGUF file, plus the length of each array key."""

    def __init__(self, scalars: dict[str, MetadataValue], array_lengths: dict[str, int]) -> None:
        self.scalars = scalars
        self.array_lengths = array_lengths

    @property
    def architecture(self) -> str:
        """``general.architecture`` (e.g. ``gemma3``): the prefix of the model's own keys."""
        return str(self.scalars.get("general.architecture", ""))

    def model_value(self, name: str, default: MetadataValue | None = None) -> MetadataValue:
        """The architecture's own key ``<arch>.<name>``, e.g. ``block_count``."""
        key = f"{self.architecture}.{name}"
        if key in self.scalars:
            return self.scalars[key]
        if default is None:
            raise errors.ConfigurationError(f"the model's GGUF metadata has no {key}")
        return default


def read_header(path: Path) -> GgufHeader:
    """Parse the header of the GGUF at ``path``; a clear error for anything else."""
    try:
        with path.open("rb") as stream:
            return _read(stream)
    except (OSError, struct.error, UnicodeDecodeError) as exc:
        raise errors.ConfigurationError(f"{path} is not a readable GGUF file: {exc}") from exc


def _read(stream: BinaryIO) -> GgufHeader:
    if stream.read(4) != _MAGIC:
        raise errors.ConfigurationError("not a GGUF file (bad magic)")
    (version,) = _unpack(stream, "<I")
    if version not in (2, 3):
        raise errors.ConfigurationError(f"unsupported GGUF version {version}")
    _tensor_count, kv_count = _unpack(stream, "<QQ")
    scalars: dict[str, MetadataValue] = {}
    array_lengths: dict[str, int] = {}
    for _ in range(kv_count):
        key = _read_string(stream)
        (value_type,) = _unpack(stream, "<I")
        if value_type == _ARRAY:
            array_lengths[key] = _skip_array(stream)
        else:
            scalars[key] = _read_value(stream, value_type)
    return GgufHeader(scalars, array_lengths)


def _unpack(stream: BinaryIO, layout: str) -> tuple:
    size = struct.calcsize(layout)
    data = stream.read(size)
    if len(data) != size:
        raise struct.error("file ends inside the header")
    return struct.unpack(layout, data)


def _read_string(stream: BinaryIO) -> str:
    (length,) = _unpack(stream, "<Q")
    return stream.read(length).decode("utf-8")


def _read_value(stream: BinaryIO, value_type: int) -> MetadataValue:
    if value_type == _STRING:
        return _read_string(stream)
    if value_type not in _SCALARS:
        raise struct.error(f"unknown metadata type {value_type}")
    return _unpack(stream, _SCALARS[value_type])[0]


def _skip_array(stream: BinaryIO) -> int:
    """Move past an array value; return its length."""
    element_type, count = _unpack(stream, "<IQ")
    if element_type == _STRING:
        for _ in range(count):
            (length,) = _unpack(stream, "<Q")
            stream.seek(length, 1)
    elif element_type in _SCALARS:
        stream.seek(struct.calcsize(_SCALARS[element_type]) * count, 1)
    else:
        raise struct.error(f"cannot skip an array of type {element_type}")
    return count
