"""Extractors keyed by media type; the highest score for a type wins."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from worker import errors
from worker.extractors.base import Extractor

_extractors: dict[str, type[Extractor]] = {}


def register(extractor_cls: type[Extractor]) -> type[Extractor]:
    """Add an extractor class (usable as a decorator).

    A second class with the same name raises, and leaves the registry as it was.
    """
    existing = _extractors.get(extractor_cls.name)
    if existing is not None and existing is not extractor_cls:
        raise ValueError(f"an extractor named {extractor_cls.name!r} is already registered")
    _extractors[extractor_cls.name] = extractor_cls
    return extractor_cls


def registered() -> list[type[Extractor]]:
    """Every registered extractor class, by name."""
    return [_extractors[name] for name in sorted(_extractors)]


def supported_media_types() -> set[str]:
    """Every media type some extractor reads."""
    return {media_type for cls in _extractors.values() for media_type in cls.media_types}


def extractor_for(media_type: str) -> Extractor:
    """An instance of the best extractor for ``media_type``.

    Raises :class:`worker.errors.UnsupportedTypeError` when none reads it.
    """
    candidates = [cls for cls in _extractors.values() if media_type in cls.media_types]
    if not candidates:
        raise errors.UnsupportedTypeError(f"no extractor reads files of type {media_type}")
    best = max(candidates, key=lambda cls: (cls.score, cls.name))
    return best()


def load_plugins(module_names: Iterable[str]) -> None:
    """Import modules that register extractors of their own (``extractor_plugins``)."""
    for module_name in module_names:
        importlib.import_module(module_name)
