"""A tiny random-weight multimodal projector ("mmproj") GGUF for the bundled model.

The image path through llama.cpp (libmtmd's clip loader, its image encoder and
the image tokens it hands the text model) can only be tested with a projector
file, and real ones are hundreds of megabytes. This module writes one of a few
hundred kilobytes instead: the clip loader accepts it, encodes a picture into
image tokens and feeds them to the text model. The weights are random, so
the answers mean nothing; the plumbing is real.

Like :mod:`tests.pdfgen` and :mod:`tests.mediagen`, nothing is downloaded.

The projector is Gemma 3's own ("gemma3": a SigLIP-style vision encoder, an
average pool, an RMS norm and one projection), because the bundled text model
is a Gemma 3 and mtmd wraps that projector's image in the text model's
``<start_of_image>``/``<end_of_image>`` tokens. Key and tensor names follow the
vendored llama.cpp ``tools/mtmd/clip-impl.h`` and ``clip.cpp`` (``load_hparams``,
``load_tensors``) and ``models/siglip.cpp`` (the gemma3 graph).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf
import numpy as np

from worker import gguf_metadata

PROJECTOR_TYPE = "gemma3"
# The vision tower: as small as the clip loader and the gemma3 graph allow.
IMAGE_SIZE = 64  # every picture is resized to IMAGE_SIZE x IMAGE_SIZE
PATCH_SIZE = 8  # 8 x 8 patches per side
POOL_KERNEL = 2  # average pool over 2 x 2 patches -> 4 x 4 image tokens
VISION_WIDTH = 32
VISION_HEADS = 2
# Not equal to VISION_WIDTH: the loader swaps ffn up/down of old gemma3 files
# when the down matrix's input width equals the embedding width.
VISION_FFN_WIDTH = 64
VISION_LAYERS = 1
LAYER_NORM_EPS = 1e-6
# SigLIP's normalisation, as Gemma 3's real projector declares it.
IMAGE_MEAN = [0.5, 0.5, 0.5]
IMAGE_STD = [0.5, 0.5, 0.5]

WEIGHT_SEED = 20250101
WEIGHT_SCALE = 0.02


def image_tokens_per_image() -> int:
    """How many image tokens the projector makes from one picture, whatever its size.

    The gemma3 preprocessor resizes every picture to IMAGE_SIZE square (no
    tiling), and the pool shrinks each side's patches by POOL_KERNEL.
    """
    tokens_per_side = IMAGE_SIZE // PATCH_SIZE // POOL_KERNEL
    return tokens_per_side * tokens_per_side


def text_embedding_width(text_model_gguf: Path) -> int:
    """The text model's embedding width: mtmd refuses a projector whose output differs."""
    header = gguf_metadata.read_header(text_model_gguf)
    if header.architecture != "gemma3":
        raise ValueError(f"{text_model_gguf} is not a Gemma 3 GGUF")
    return int(header.model_value("embedding_length"))


def write_tiny_mmproj(path: Path, text_model_gguf: Path) -> Path:
    """Write the tiny projector for ``text_model_gguf`` to ``path`` and return ``path``.

    The same inputs always give the same bytes (fixed seed), so a file written
    by one test run is identical to the next.
    """
    text_width = text_embedding_width(text_model_gguf)
    writer = gguf.GGUFWriter(str(path), arch="clip")
    try:
        _add_metadata(writer, text_width)
        for name, values in projector_tensors(text_width).items():
            writer.add_tensor(name, values)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path


def _add_metadata(writer: gguf.GGUFWriter, text_width: int) -> None:
    """The keys clip.cpp's loader reads; those it requires make it fail when absent."""
    writer.add_name("sieve tiny random gemma3 mmproj")
    writer.add_description("random weights, for tests of the image path only")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_bool("clip.has_audio_encoder", False)
    writer.add_string("clip.projector_type", PROJECTOR_TYPE)
    writer.add_bool("clip.use_gelu", True)
    writer.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    writer.add_uint32("clip.vision.patch_size", PATCH_SIZE)
    writer.add_uint32("clip.vision.embedding_length", VISION_WIDTH)
    writer.add_uint32("clip.vision.feed_forward_length", VISION_FFN_WIDTH)
    writer.add_uint32("clip.vision.block_count", VISION_LAYERS)
    writer.add_uint32("clip.vision.projection_dim", text_width)
    writer.add_uint32("clip.vision.attention.head_count", VISION_HEADS)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", LAYER_NORM_EPS)
    writer.add_array("clip.vision.image_mean", IMAGE_MEAN)
    writer.add_array("clip.vision.image_std", IMAGE_STD)
    # Real Gemma 3 pools by 4; this key lets a small test tower pool by less.
    writer.add_uint32("clip.vision.projector.scale_factor", POOL_KERNEL)


def projector_tensors(text_width: int) -> dict[str, np.ndarray]:
    """Every tensor of the projector, by GGUF name, in numpy (row-major) shape.

    numpy shapes are ggml's ``ne`` reversed: a matrix mapping width ``a`` to
    width ``b`` is ``(b, a)``, except gemma3's input projection, which the graph
    transposes before use and so is stored ``(vision width, text width)``.
    """
    random = np.random.default_rng(WEIGHT_SEED)
    patches_per_image = (IMAGE_SIZE // PATCH_SIZE) ** 2
    tensors = {
        "v.patch_embd.weight": _random(random, VISION_WIDTH, 3, PATCH_SIZE, PATCH_SIZE),
        "v.patch_embd.bias": _zeros(VISION_WIDTH),
        "v.position_embd.weight": _random(random, patches_per_image, VISION_WIDTH),
    }
    for layer in range(VISION_LAYERS):
        tensors.update(_encoder_layer_tensors(random, layer))
    tensors.update(
        {
            "v.post_ln.weight": _ones(VISION_WIDTH),
            "v.post_ln.bias": _zeros(VISION_WIDTH),
            "mm.soft_emb_norm.weight": _ones(VISION_WIDTH),
            "mm.input_projection.weight": _random(random, VISION_WIDTH, text_width),
        }
    )
    return tensors


def _encoder_layer_tensors(random: np.random.Generator, layer: int) -> dict[str, np.ndarray]:
    """One pre-norm transformer block: layer norms, q/k/v/out attention, a GELU MLP."""
    prefix = f"v.blk.{layer}"
    tensors: dict[str, np.ndarray] = {}
    for norm in ("ln1", "ln2"):
        tensors[f"{prefix}.{norm}.weight"] = _ones(VISION_WIDTH)
        tensors[f"{prefix}.{norm}.bias"] = _zeros(VISION_WIDTH)
    for projection in ("attn_q", "attn_k", "attn_v", "attn_out"):
        tensors[f"{prefix}.{projection}.weight"] = _random(random, VISION_WIDTH, VISION_WIDTH)
        tensors[f"{prefix}.{projection}.bias"] = _zeros(VISION_WIDTH)
    tensors[f"{prefix}.ffn_up.weight"] = _random(random, VISION_FFN_WIDTH, VISION_WIDTH)
    tensors[f"{prefix}.ffn_up.bias"] = _zeros(VISION_FFN_WIDTH)
    tensors[f"{prefix}.ffn_down.weight"] = _random(random, VISION_WIDTH, VISION_FFN_WIDTH)
    tensors[f"{prefix}.ffn_down.bias"] = _zeros(VISION_WIDTH)
    return tensors


def _random(random: np.random.Generator, *shape: int) -> np.ndarray:
    """Small normal weights: large ones would overflow the text model's activations."""
    return (random.standard_normal(shape) * WEIGHT_SCALE).astype(np.float32)


def _ones(width: int) -> np.ndarray:
    """A norm's neutral scale."""
    return np.ones(width, dtype=np.float32)


def _zeros(width: int) -> np.ndarray:
    """A neutral bias."""
    return np.zeros(width, dtype=np.float32)


# The bundled GGUF carries no ``tokenizer.chat_template``, and MTMDChatHandler
# (unlike the text-only chat path) renders only the file's own template, so a
# picture cannot reach this model through it without one. This is Gemma 3's
# turn format, reduced to text parts (the handler has already turned each image
# part into mtmd's media marker text). No bos_token: mtmd adds it.
GEMMA3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<start_of_turn>' + ('model' if message['role'] == 'assistant' else 'user') + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<end_of_turn>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)


def lend_chat_template(llama: Any) -> None:
    """Give a loaded ``llama_cpp.Llama`` a Gemma 3 chat template if its file has none.

    MTMDChatHandler reads the template from ``llama.metadata`` at every call,
    so setting it there after loading is enough; a file's own template wins.
    """
    llama.metadata.setdefault("tokenizer.chat_template", GEMMA3_CHAT_TEMPLATE)
