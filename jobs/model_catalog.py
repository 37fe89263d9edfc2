"""The models ``sieve models pull`` knows how to fetch: data, not code.

Each entry names the exact files in a Hugging Face repository and, where it
could be checked, the SHA-256 Hugging Face records for them (the Git LFS
object id of a file *is* its SHA-256). A file with ``sha256=None`` is fetched
on trust: the downloader records the hash it computed and verifies later pulls
against that (trust on first use), and says so.

Where the names and hashes come from is written next to each entry. None of
them was fetched live from Hugging Face while writing this file (that machine
had no route to it); each was read from several independent public projects
that pin the same file, and only agreeing values were kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from worker import errors

FileRole = Literal["model", "mmproj"]


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, as published in a Hugging Face repository.

    ``revision`` is the branch or commit the file is read from. It stays
    ``"main"`` unless the repository is known to have replaced the file on
    ``main`` since its hash was recorded: then the commit the hash belongs to
    is pinned, so the pinned hash keeps matching what is downloaded.
    """

    repo: str  # "owner/name"
    filename: str
    role: FileRole
    sha256: str | None  # lowercase hex; None: unverified, trust on first use
    size_bytes: int | None  # for display and progress only; the hash decides
    revision: str = "main"


@dataclass(frozen=True)
class KnownModel:
    """A model Sieve can pull by name: its files and a context size that fits."""

    name: str
    description: str
    files: tuple[ModelFile, ...]
    n_ctx: int  # the context Sieve suggests for it (SIEVE_MODEL__N_CTX)
    license_note: str

    @property
    def model_file(self) -> ModelFile:
        """The weights (role ``model``); a well-formed entry has exactly one."""
        return next(file for file in self.files if file.role == "model")

    @property
    def mmproj_file(self) -> ModelFile | None:
        """The multimodal projector, or None for a text-only model."""
        return next((file for file in self.files if file.role == "mmproj"), None)


_GEMMA_TERMS = (
    "Gemma Terms of Use (https://ai.google.dev/gemma/terms); the repository may ask "
    "you to accept them on Hugging Face first (then set SIEVE_HUB__TOKEN)."
)

KNOWN_MODELS: dict[str, KnownModel] = {
    # The target model. Repository, file names, sizes and hashes: unsloth's
    # conversion, pinned at commit fc034cf… by several projects that agree
    # (e.g. openclaw's llama-cpp model catalog, a Tauri app's
    # GEMMA4_12B_MMPROJ_* constants "from the HuggingFace API", an
    # MMProjArtifactPin for this repository). unsloth replaced the Q4_K_M on
    # main once already (earlier pins show 43fec98c… at 7,121,860,000 bytes),
    # so the file is read from that commit rather than from main.
    "gemma-4-12b-it": KnownModel(
        name="gemma-4-12b-it",
        description=(
            "Gemma 4 12B instruction-tuned, Q4_K_M, with its multimodal projector "
            "(reads text and images). About 7.3 GB; wants 16 GB of RAM or a 12 GB GPU."
        ),
        files=(
            ModelFile(
                repo="unsloth/gemma-4-12b-it-GGUF",
                filename="gemma-4-12b-it-Q4_K_M.gguf",
                role="model",
                sha256="0a270ec9fe6b34f4a0d33992b6135117b484ebc4766ab76b51d4ae8c457e4c42",
                size_bytes=7_121_861_440,
                revision="fc034cfff751157913579611efad8462ac1be606",
            ),
            ModelFile(
                repo="unsloth/gemma-4-12b-it-GGUF",
                filename="mmproj-F16.gguf",
                role="mmproj",
                sha256="91f086971e56d7a7d8d39e271873fccdb49541bd259d6e02c401a4f1cb7a219e",
                size_bytes=175_115_840,
                revision="fc034cfff751157913579611efad8462ac1be606",
            ),
        ),
        # Gemma 4's window is far larger; 8192 keeps the KV cache of a 16 GB
        # machine in check and holds Sieve's longest prompts.
        n_ctx=8192,
        license_note=(
            "Apache 2.0, as stated by Google's Gemma 4 model card and unsloth's repository card."
        ),
    ),
    # ggml-org's own conversion (the llama.cpp project). File names from the
    # repository's file listing on huggingface.co; hashes and sizes agree across
    # many pins, including ramalama's content-addressed blob names
    # (blobs/sha256-882e8d…, blobs/sha256-8c0fb0…). ggml-org squashes this
    # repository's history (two commit ids are pinned for the same bytes), so a
    # commit pin could vanish: main is used and the hash guards it.
    "gemma-3-4b-it": KnownModel(
        name="gemma-3-4b-it",
        description=(
            "Gemma 3 4B instruction-tuned, Q4_K_M, with its multimodal projector "
            "(reads text and images). About 3.3 GB; runs on 8 GB of RAM."
        ),
        files=(
            ModelFile(
                repo="ggml-org/gemma-3-4b-it-GGUF",
                filename="gemma-3-4b-it-Q4_K_M.gguf",
                role="model",
                sha256="882e8d2db44dc554fb0ea5077cb7e4bc49e7342a1f0da57901c0802ea21a0863",
                size_bytes=2_489_757_856,
            ),
            ModelFile(
                repo="ggml-org/gemma-3-4b-it-GGUF",
                filename="mmproj-model-f16.gguf",
                role="mmproj",
                sha256="8c0fb064b019a6972856aaae2c7e4792858af3ca4561be2dbf649123ba6c40cb",
                size_bytes=851_251_104,
            ),
        ),
        n_ctx=8192,
        license_note=_GEMMA_TERMS,
    ),
    # ggml-org publishes this size only as Q8_0, so the Q4_K_M is unsloth's.
    # Hash and size agree across several pins (one at commit c90975db…).
    "gemma-3-270m-it": KnownModel(
        name="gemma-3-270m-it",
        description=(
            "Gemma 3 270M instruction-tuned, Q4_K_M, text only. About 250 MB: for "
            "testing the machinery, not for judging answers."
        ),
        files=(
            ModelFile(
                repo="unsloth/gemma-3-270m-it-GGUF",
                filename="gemma-3-270m-it-Q4_K_M.gguf",
                role="model",
                sha256="b1baabd6b729e4041822220d3e648e00d99cac5df86b10dffb77bcccf0688e39",
                size_bytes=253_115_424,
            ),
        ),
        n_ctx=4096,
        license_note=_GEMMA_TERMS,
    ),
}


def known_model(name: str) -> KnownModel:
    """The catalog entry called ``name``.

    Raises :class:`worker.errors.ConfigurationError` naming the known models
    when there is no such entry.
    """
    try:
        return KNOWN_MODELS[name]
    except KeyError:
        known_names = ", ".join(sorted(KNOWN_MODELS))
        raise errors.ConfigurationError(
            f"unknown model {name!r}; known models: {known_names}"
        ) from None
