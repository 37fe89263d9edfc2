"""PyMuPDF, imported without its optional layout analyser.

PyMuPDF 2.0 imports ``pymupdf.layout`` (the pymupdf_layout package, with ONNX
models) whenever it is installed, and its wheel depends on it: 0.56 s of every
sandboxed extraction's fresh interpreter, for a feature Sieve does not use (it
reads text layers and renders pages). A ``None`` entry in ``sys.modules`` makes
that import fail as if the package were absent, which PyMuPDF handles.
"""

from __future__ import annotations

import sys

sys.modules.setdefault("pymupdf.layout", None)  # type: ignore[arg-type]

import pymupdf  # noqa: E402  (must follow the entry above)

__all__ = ["pymupdf"]
