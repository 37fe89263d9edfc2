"""Outlook PST and OST mail stores: recognised, and refused with what to do instead.

No library this project may use writes a PST, so no test could show a PST
reader here works; and a mail-store reader that silently drops messages is
the failure litigation teams fear most (ICIJ extract #51: Tika's PST parser
lost 12 of 26 messages). So a PST is detected by its signature and fails as
``unsupported_type`` with the way through that is tested end to end:
Debian's ``readpst`` (libpst, GPL, a separate program installed by
``scripts/setup``) writes each folder as an MBOX, and Sieve reads MBOX
fully — every message counted, checkpointed, threaded and de-duplicated.
"""

from __future__ import annotations

from pathlib import Path

from worker import errors
from worker.config import LimitSettings, MediaSettings
from worker.extractors.base import Extraction, Extractor
from worker.extractors.registry import register
from worker.media_types import PST

CONVERT_HINT = (
    "Outlook PST/OST mail stores are not read directly: convert it with "
    "`readpst -r -o OUT_DIR FILE.pst` (installed by scripts/setup) and submit OUT_DIR; "
    "each folder becomes an MBOX that Sieve reads message by message"
)


@register
class PstExtractor(Extractor):
    """Refuses a PST/OST with the conversion that keeps every message."""

    name = "pst"
    version = "1"
    media_types = frozenset({PST})

    def extract(
        self,
        source: Path,
        artifacts_dir: Path,
        limits: LimitSettings,
        media: MediaSettings = MediaSettings(),
    ) -> Extraction:
        raise errors.UnsupportedTypeError(CONVERT_HINT)
