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

TokenCounter = Callable[[str], int]
Truncator = Callable[[str, int], str]


@dataclass(frozen=True)
class LabelledText:
    """Text and the segment label (e.g. "page 3") it came from."""

    label: str
    text: str


@dataclass(frozen=True)
class Window:
    """Consecutive pieces of a document that fit in one prompt together."""

    labels: tuple[str, ...]
    text: str

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
        while count(render_piece(LabelledText(piece.label, remaining))) > budget_tokens:
            # Leave room for the label line; cut at the token limit.
            head = truncate(remaining, max(1, budget_tokens - 16))
            if not head:
                break
            result.append(LabelledText(piece.label, head))
            remaining = remaining[len(head):]
        if remaining.strip():
            result.append(LabelledText(piece.label, remaining))
    return result


def plan_windows(
    pieces: Sequence[LabelledText], budget_tokens: int, count: TokenCounter, truncate: Truncator
) -> list[Window]:
    """Group pieces in order into windows of at most ``budget_tokens`` tokens."""
    if budget_tokens < 32:
        raise ValueError(f"a context budget of {budget_tokens} tokens is too small to use")
    windows: list[Window] = []
    labels: list[str] = []
    parts: list[str] = []
    used = 0
    for piece in split_oversized(pieces, budget_tokens, count, truncate):
        rendered = render_piece(piece)
        cost = count(rendered)
        if parts and used + cost > budget_tokens:
            windows.append(Window(tuple(dict.fromkeys(labels)), "".join(parts)))
            labels, parts, used = [], [], 0
        labels.append(piece.label)
        parts.append(rendered)
        used += cost
    if parts:
        windows.append(Window(tuple(dict.fromkeys(labels)), "".join(parts)))
    return windows


def partial_answers_as_pieces(partials: Sequence[tuple[Window, dict[str, Any]]]) -> list[LabelledText]:
    """Partial answers as labelled pieces, ready to be windowed for a reduce round."""
    return [
        LabelledText(window.span, json.dumps(answer, ensure_ascii=False, sort_keys=True))
        for window, answer in partials
    ]
