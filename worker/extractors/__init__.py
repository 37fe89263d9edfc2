"""Extractors, one module per media family.

Importing this package registers every extractor: each module below registers
its class when imported, so adding a format is one module and one line here
(explicit imports rather than entry points, so what is installed is what you read).
"""

from worker.extractors import (  # noqa: F401  (imported to register)
    archive,
    audio,
    converted,
    dicom,
    dicom_unit,
    email,
    image,
    msg,
    office,
    pdf,
    pst,
    text,
    video,
)
from worker.extractors.registry import (
    extractor_for,
    load_plugins,
    register,
    registered,
    supported_media_types,
)

__all__ = [
    "extractor_for",
    "load_plugins",
    "register",
    "registered",
    "supported_media_types",
]
