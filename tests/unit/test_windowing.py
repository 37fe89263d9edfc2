"""Long documents are cut into page windows that fit the model's context.

The token counter here counts whitespace-separated words and the truncator
keeps a prefix of whole words: deterministic stand-ins that let these tests
check the windowing logic itself, not a tokenizer.
"""

from __future__ import annotations

import json
import re

import pytest

from worker import errors
from worker.windowing import (
    LabelledText,
    Window,
    partial_answers_as_pieces,
    plan_windows,
    render_piece,
    split_oversized,
)


def count_words(text: str) -> int:
    return len(text.split())


def keep_words(text: str, word_limit: int) -> str:
    """The longest prefix of ``text`` holding at most ``word_limit`` words."""
    match = re.match(rf"(?:\s*\S+){{0,{word_limit}}}", text)
    assert match is not None
    return match.group(0)


def page(number: int, word_count: int) -> LabelledText:
    return LabelledText(
        f"page {number}", " ".join(f"p{number}w{index}" for index in range(word_count))
    )


def words_of(pieces_text: str) -> list[str]:
    """The document words in a rendered text, label lines left out."""
    return [word for word in pieces_text.split() if re.fullmatch(r"p\d+w\d+", word)]


def test_the_word_truncator_keeps_a_prefix() -> None:
    assert keep_words("one two  three four", 2) == "one two"
    assert keep_words("  one two", 5) == "  one two"


def test_pages_that_fit_together_share_one_window_in_order() -> None:
    pages = [page(1, 10), page(2, 10), page(3, 10)]

    windows = plan_windows(pages, 100, count_words, keep_words)

    assert windows == [
        Window(("page 1", "page 2", "page 3"), "".join(render_piece(p) for p in pages))
    ]


@pytest.mark.parametrize("budget", [32, 40, 57, 100, 250])
def test_windows_never_exceed_the_budget(budget: int) -> None:
    pages = [
        page(number, word_count)
        for number, word_count in enumerate([5, 30, 12, 90, 1, 44, 7, 300, 20], 1)
    ]

    windows = plan_windows(pages, budget, count_words, keep_words)

    assert windows
    for window in windows:
        assert count_words(window.text) <= budget


@pytest.mark.parametrize("budget", [32, 57, 100, 250])
def test_every_word_appears_once_and_in_document_order(budget: int) -> None:
    pages = [
        page(number, word_count)
        for number, word_count in enumerate([5, 30, 12, 90, 1, 44, 7, 300, 20], 1)
    ]

    windows = plan_windows(pages, budget, count_words, keep_words)

    all_words = [word for window in windows for word in words_of(window.text)]
    assert all_words == [word for piece in pages for word in piece.text.split()]


def test_whole_pages_are_kept_together_when_they_fit() -> None:
    pages = [page(1, 20), page(2, 20), page(3, 20), page(4, 20)]  # 24 tokens each, rendered

    windows = plan_windows(pages, 50, count_words, keep_words)

    assert [window.labels for window in windows] == [("page 1", "page 2"), ("page 3", "page 4")]
    for window in windows:
        for label in window.labels:
            piece = next(p for p in pages if p.label == label)
            assert render_piece(piece) in window.text


def test_a_page_larger_than_the_budget_is_split_into_parts_citing_that_page() -> None:
    pages = [page(1, 5), page(2, 200), page(3, 5)]

    windows = plan_windows(pages, 40, count_words, keep_words)

    # 200 words cannot fit in 40 tokens: page 2 spans several windows.
    assert len([window for window in windows if "page 2" in window.labels]) >= 5
    for window in windows:
        assert count_words(window.text) <= 40
        for word in words_of(window.text):
            owner = f"page {word[1 : word.index('w')]}"
            assert owner in window.labels


def test_split_parts_each_carry_the_label_and_fit_the_budget() -> None:
    parts = split_oversized([page(7, 100)], 32, count_words, keep_words)

    assert len(parts) > 1
    assert {part.label for part in parts} == {"page 7"}
    assert all(count_words(render_piece(part)) <= 32 for part in parts)
    assert "".join(part.text for part in parts) == page(7, 100).text


def test_pieces_within_the_budget_are_not_split() -> None:
    pieces = [page(1, 3), page(2, 20)]

    assert split_oversized(pieces, 100, count_words, keep_words) == pieces


def test_every_input_label_appears_in_some_window() -> None:
    pages = [page(number, (number * 37) % 120 + 1) for number in range(1, 30)]

    windows = plan_windows(pages, 64, count_words, keep_words)

    labels_in_windows = {label for window in windows for label in window.labels}
    assert labels_in_windows == {piece.label for piece in pages}


def test_a_window_span_names_one_label_or_the_first_and_last() -> None:
    assert Window(("page 4",), "text").span == "page 4"
    assert Window(("page 1", "page 2", "page 6"), "text").span == "page 1 – page 6"


@pytest.mark.parametrize("budget", [0, 1, 31])
def test_a_budget_too_small_to_use_is_refused(budget: int) -> None:
    with pytest.raises(errors.ModelError, match=f"leaves {budget} tokens .* too small to use"):
        plan_windows([page(1, 3)], budget, count_words, keep_words)


def test_no_pieces_make_no_windows() -> None:
    assert plan_windows([], 100, count_words, keep_words) == []


def test_a_rendered_piece_is_introduced_by_its_label() -> None:
    assert render_piece(LabelledText("page 3", "  body text \n")) == "--- page 3 ---\nbody text\n"


def test_partial_answers_become_pieces_headed_by_their_window_span() -> None:
    first = Window(("page 1", "page 2", "page 3"), "…")
    second = Window(("page 4",), "…")
    answers = [
        (first, {"summary": "Ünïcode lease", "key_points": ["a"]}),
        (second, {"summary": "b"}),
    ]

    pieces = partial_answers_as_pieces(answers)

    assert [piece.label for piece in pieces] == ["page 1 – page 3", "page 4"]
    assert [json.loads(piece.text) for piece in pieces] == [answer for _, answer in answers]
    assert "Ünïcode" in pieces[0].text
    assert pieces[0].text.index('"key_points"') < pieces[0].text.index('"summary"')


def test_partial_answers_can_be_windowed_for_a_reduce_round() -> None:
    windows = plan_windows(
        [page(number, 30) for number in range(1, 9)], 80, count_words, keep_words
    )
    partials = [(window, {"summary": " ".join(["word"] * 25)}) for window in windows]

    reduce_windows = plan_windows(partial_answers_as_pieces(partials), 80, count_words, keep_words)

    assert {label for window in reduce_windows for label in window.labels} == {
        w.span for w in windows
    }
    assert all(count_words(window.text) <= 80 for window in reduce_windows)


def _words(count: int) -> str:
    return " ".join(f"w{index}" for index in range(count))


def _count_words(text: str) -> int:
    return len(text.split())


def _cut_words(text: str, limit: int) -> str:
    return " ".join(text.split()[:limit])


def test_pictures_travel_with_their_pieces_and_cost_image_tokens() -> None:
    pieces = [
        LabelledText("frame 1", "door opens", "/a/frame-1.png"),
        LabelledText("00:00:01–00:00:04", "hello there"),
        LabelledText("frame 2", "", "/a/frame-2.png"),
    ]
    (window,) = plan_windows(pieces, 200, _count_words, _cut_words, image_tokens=50)
    assert window.images == ("/a/frame-1.png", "/a/frame-2.png")
    assert window.labels == ("frame 1", "00:00:01–00:00:04", "frame 2")
    windows = plan_windows(pieces, 60, _count_words, _cut_words, image_tokens=50)
    # 6 words + 50 for frame 1; the 5-word chunk would overflow, so it opens
    # the second window, where frame 2 (4 words + 50) still fits.
    assert [w.images for w in windows] == [("/a/frame-1.png",), ("/a/frame-2.png",)]
    assert [w.labels for w in windows] == [("frame 1",), ("00:00:01–00:00:04", "frame 2")]


def test_a_window_holds_at_most_max_images_pictures() -> None:
    pieces = [LabelledText(f"frame {n}", "", f"/a/{n}.png") for n in range(7)]
    windows = plan_windows(pieces, 10_000, _count_words, _cut_words, image_tokens=10, max_images=3)
    assert [len(w.images) for w in windows] == [3, 3, 1]


def test_a_split_piece_keeps_its_picture_on_the_first_part_only() -> None:
    pieces = [LabelledText("page 1", _words(300), "/a/page-1.png")]
    windows = plan_windows(pieces, 120, _count_words, _cut_words, image_tokens=20)
    assert len(windows) >= 3
    assert windows[0].images == ("/a/page-1.png",)
    assert all(w.images == () for w in windows[1:])
