"""The per-process model: chat payloads, and what a model that cannot see does with pictures."""

from __future__ import annotations

import base64
from pathlib import Path

import pymupdf
import pytest

from worker import errors
from worker.model import LocalModel, build_chat_messages

SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string", "maxLength": 20}},
    "required": ["answer"],
    "additionalProperties": False,
}


def _png(path: Path) -> Path:
    pixmap = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 8), False)
    pixmap.clear_with(200)
    pixmap.save(path)
    return path


def test_text_only_messages_are_plain_strings() -> None:
    assert build_chat_messages("Do X.", "Document: a") == [
        {"role": "system", "content": "Do X."},
        {"role": "user", "content": "Document: a"},
    ]


def test_pictures_go_in_as_png_data_urls_after_the_text(tmp_path: Path) -> None:
    first, second = _png(tmp_path / "a.png"), _png(tmp_path / "b.png")
    system, user = build_chat_messages("Do X.", "Document: a", [str(first), str(second)])
    assert system == {"role": "system", "content": "Do X."}
    assert user["role"] == "user"
    text_part, *image_parts = user["content"]
    assert text_part == {"type": "text", "text": "Document: a"}
    assert len(image_parts) == 2
    for part, path in zip(image_parts, (first, second), strict=True):
        assert part["type"] == "image_url"
        prefix, _, encoded = part["image_url"]["url"].partition(",")
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(encoded) == path.read_bytes()


@pytest.mark.model
def test_a_model_without_a_projector_refuses_pictures_by_name(
    small_model: LocalModel, tmp_path: Path
) -> None:
    assert small_model.info.supports_vision is False
    assert small_model.image_tokens == 0
    with pytest.raises(errors.ModelCapabilityError) as caught:
        small_model.complete_json(
            "Answer.", "Document: a", SCHEMA, 32, [str(_png(tmp_path / "a.png"))]
        )
    assert caught.value.code == "model_capability"
    assert "SIEVE_MODEL__MMPROJ_PATH" in caught.value.message


@pytest.mark.model
def test_a_text_only_gguf_given_as_projector_fails_to_load_clearly(
    small_model: LocalModel,
) -> None:
    from worker.config import ModelSettings

    with pytest.raises(errors.ModelLoadError, match="multimodal projector"):
        LocalModel(ModelSettings(mmproj_path=Path(small_model.info.path)))


def test_gemma_4_files_get_gemma_4s_chat_handler_and_others_the_generic_one() -> None:
    from llama_cpp import llama_chat_format

    from worker.model import chat_handler_class

    assert (
        chat_handler_class(Path("gemma-4-12b-it-Q4_K_M.gguf"))
        is llama_chat_format.Gemma4ChatHandler
    )
    assert (
        chat_handler_class(Path("gemma-3-4b-it-q4_k_m.gguf")) is llama_chat_format.MTMDChatHandler
    )
