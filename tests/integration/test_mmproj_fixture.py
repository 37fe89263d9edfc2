"""The tiny generated projector really drives llama.cpp's image path.

Tests of pictures through the model rely on :mod:`tests.mmprojgen`; these
prove that its file is a projector libmtmd accepts for the bundled model, and
that a picture sent with it becomes image tokens in the prompt (so a later test
that passes with it has exercised the real encoder, not a stub).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests import mmprojgen
from worker.model import bundled_model_path

N_CTX = 2048


@pytest.fixture(scope="module")
def text_model() -> Path:
    return bundled_model_path()


@pytest.fixture(scope="module")
def tiny_mmproj(text_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("mmproj")
    return mmprojgen.write_tiny_mmproj(directory / "tiny-mmproj.gguf", text_model)


def _load(text_model: Path, clip_model: Path) -> Any:
    """The bundled model with an MTMDChatHandler for ``clip_model``, as the worker builds it."""
    import llama_cpp
    from llama_cpp.llama_chat_format import MTMDChatHandler

    handler = MTMDChatHandler(clip_model_path=str(clip_model), verbose=False)
    llama = llama_cpp.Llama(
        model_path=str(text_model), chat_handler=handler, n_ctx=N_CTX, n_threads=2, verbose=False
    )
    mmprojgen.lend_chat_template(llama)
    return llama


@pytest.fixture(scope="module")
def seeing_model(text_model: Path, tiny_mmproj: Path) -> Iterator[Any]:
    llama = _load(text_model, tiny_mmproj)
    yield llama
    llama.close()


def _png_data_url() -> str:
    """A small, not square picture: the projector resizes whatever it is given."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _prompt_tokens(llama: Any, content: list[dict[str, Any]]) -> int:
    response = llama.create_chat_completion(
        messages=[{"role": "user", "content": content}], max_tokens=4, temperature=0.0, seed=1
    )
    return int(response["usage"]["prompt_tokens"])


def test_the_file_is_the_same_bytes_every_time(text_model: Path, tmp_path: Path) -> None:
    first = mmprojgen.write_tiny_mmproj(tmp_path / "a.gguf", text_model)
    second = mmprojgen.write_tiny_mmproj(tmp_path / "b.gguf", text_model)
    assert first.read_bytes() == second.read_bytes()
    assert first.stat().st_size < 1_000_000


@pytest.mark.model
def test_a_picture_becomes_image_tokens_through_the_tiny_projector(seeing_model: Any) -> None:
    from llama_cpp import mtmd_cpp

    handler = seeing_model.chat_handler
    handler._init_mtmd_context(seeing_model)
    assert mtmd_cpp.mtmd_support_vision(handler.mtmd_ctx)

    question = {"type": "text", "text": "What is in the picture?"}
    picture = {"type": "image_url", "image_url": {"url": _png_data_url()}}
    without_picture = _prompt_tokens(seeing_model, [question])
    with_picture = _prompt_tokens(seeing_model, [question, picture])

    assert mmprojgen.image_tokens_per_image() == 16
    assert with_picture - without_picture >= mmprojgen.image_tokens_per_image()


@pytest.mark.model
def test_a_text_only_gguf_is_still_refused_as_a_projector(text_model: Path) -> None:
    llama = _load(text_model, text_model)
    try:
        with pytest.raises(ValueError, match="mtmd"):
            llama.create_chat_completion(
                messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
                max_tokens=1,
            )
    finally:
        llama.close()
