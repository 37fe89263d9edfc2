"""Fitting long documents into the model's context: page windows and reduction.

A document whose pages do not fit in one prompt is cut into windows of whole
pages (a single page too long for any window is split into parts that cite the
same page). Each window gets its own answer (map); the answers, each headed by
the pages it covers, are then combined (reduce), in several rounds if even the
answers do not fit together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from worker import errors

TokenCounter = Callable[[str], int]
Truncator = Callable[[str, int], str]


# Below this a window cannot hold a useful piece of any document.
MIN_BUDGET_TOKENS = 32


@dataclass(frozen=True)
class LabelledText:
    """Text and the segment label (e.g. "page 3") it came from.

    ``image_path`` is the segment's picture (a scanned page, a frame, an
    image), for a model that can see; None for text alone.
    """

    label: str
    text: str
    image_path: str | None = None


@dataclass(frozen=True)
class Window:
    """Consecutive pieces of a document that fit in one prompt together."""

    labels: tuple[str, ...]
    text: str
    images: tuple[str, ...] = ()  # pictures sent with the text, in order

    @property
    def span(self) -> str:
        """A human form of what the window covers: "page 1" or "page 1 – page 6"."""
        if len(self.labels) == 1:
            return self.labels[0]
        return f"{self.labels[0]} – {self.labels[-1]}"


def render_piece(piece: LabelledText) -> str:
    """A piece as it appears in a prompt, introduced by its label."""
    return f"--- {piece.label} ---\n{piece.text.strip()}\n"


def split_oversized(
    pieces: Sequence[LabelledText], budget_tokens: int, count: TokenCounter, truncate: Truncator
) -> list[LabelledText]:
    """Pieces, with any single piece larger than the budget cut into parts."""
    result: list[LabelledText] = []
    for piece in pieces:
        remaining = piece.text
        image = piece.image_path  # travels with the first part of its piece
        while count(render_piece(LabelledText(piece.label, remaining))) > budget_tokens:
            # Leave room for the label line; cut at the token limit.
            head = truncate(remaining, max(1, budget_tokens - 16))
            if not head:
                break
            result.append(LabelledText(piece.label, head, image))
            remaining, image = remaining[len(head) :], None
        if remaining.strip() or image:
            result.append(LabelledText(piece.label, remaining, image))
    return result


def plan_windows(
    pieces: Sequence[LabelledText],
    budget_tokens: int,
    count: TokenCounter,
    truncate: Truncator,
    image_tokens: int = 0,
    max_images: int = 4,
) -> list[Window]:
    """Group pieces in order into windows of at most ``budget_tokens`` tokens.

    A piece's picture costs ``image_tokens`` (what the model's projector turns
    one image into), and a window holds at most ``max_images`` pictures; pass
    no pictures for a model that cannot see.
    """
    if budget_tokens < MIN_BUDGET_TOKENS:
        raise errors.ModelError(
            f"the context window leaves {budget_tokens} tokens for the document once the "
            "instructions and the answer are reserved: too small to use; raise n_ctx"
        )
    windows: list[Window] = []
    labels: list[str] = []
    parts: list[str] = []
    images: list[str] = []
    used = 0
    for piece in split_oversized(pieces, budget_tokens - image_tokens, count, truncate):
        rendered = render_piece(piece)
        cost = count(rendered) + (image_tokens if piece.image_path else 0)
        window_full = len(images) >= max_images and piece.image_path is not None
        if parts and (used + cost > budget_tokens or window_full):
            windows.append(Window(tuple(dict.fromkeys(labels)), "".join(parts), tuple(images)))
            labels, parts, images, used = [], [], [], 0
        labels.append(piece.label)
        parts.append(rendered)
        if piece.image_path:
            images.append(piece.image_path)
        used += cost
    if parts:
        windows.append(Window(tuple(dict.fromkeys(labels)), "".join(parts), tuple(images)))
    return windows


def partial_answers_as_pieces(
    partials: Sequence[tuple[Window, dict[str, Any]]],
) -> list[LabelledText]:
    """Partial answers as labelled pieces, ready to be windowed for a reduce round."""
    return [
        LabelledText(window.span, json.dumps(answer, ensure_ascii=False, sort_keys=True))
        for window, answer in partials
    ]
