"""Several model calls in flight in one llama.cpp context, decoded together.

A CPU (or GPU) reading a model's weights once per generated token is bound by
memory bandwidth, not arithmetic: decoding one token for each of four
sequences in one batch costs little more than decoding one. ``llama-server
--parallel N`` does this; llama-cpp-python's ``Llama`` drives one sequence, so
this module drives llama.cpp's batch API itself. Measured here with the
bundled model, 4 sequences in flight gave 1.6-1.9x the aggregate tokens/s of
one (``bench/RESULTS.md``, ``parallel_sequences``).

One scheduler thread owns the context. Callers on any thread hand it a
:class:`GenerationRequest` and wait on its future. Each step the scheduler
admits waiting requests into free slots (llama.cpp sequence ids), then builds
one batch: one token for every slot that is generating, then prompt tokens of
newly admitted slots up to ``n_batch``. After the decode it samples the next
token of each slot whose logits came out, with that slot's own sampler chain
(llama.cpp's, as ``Llama`` builds it) after masking the logits with that
call's schema mask.

A slot keeps what its KV cache holds after a call; a new request goes to the
free slot whose cache shares the longest prefix with its prompt, and only the
rest is evaluated (``llama-server`` picks slots by prompt similarity too). So
a task's instructions stay evaluated in the slots that served that task.

This module knows nothing of the database or Celery.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from worker import errors
from worker.constrained import SchemaMask
from worker.prefix_cache import common_prefix_length

logger = logging.getLogger(__name__)

# Tokens of sampling history the repeat penalty looks back over: what
# llama-cpp-python's ``Llama`` uses (``last_n_tokens_size``), so a batched
# call samples as a serial one does.
PENALTY_LAST_N = 64


@dataclass(frozen=True)
class Sampling:
    """How to pick each next token; the defaults ``create_chat_completion`` uses."""

    temperature: float
    top_p: float
    repeat_penalty: float
    seed: int
    top_k: int = 40
    min_p: float = 0.05


@dataclass
class GenerationRequest:
    """One model call: a tokenised prompt, its mask, and where the answer goes."""

    prompt: Sequence[int]
    max_tokens: int
    sampling: Sampling
    mask: SchemaMask | None = None
    stop: Sequence[str] = ()
    future: Future[Generation] = field(default_factory=Future)


@dataclass(frozen=True)
class Generation:
    """What one call produced and what it cost."""

    text: str
    completion_tokens: int
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    evaluated_prompt_tokens: int  # the rest was already in the slot's cache


@dataclass
class _Slot:
    """One sequence id of the context and the call it is serving."""

    sequence: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV the cache holds
    request: GenerationRequest | None = None
    sampler: Any = None
    pending: list[int] = field(default_factory=list)  # to evaluate in the next batches
    generated: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    evaluated_prompt_tokens: int = 0

    @property
    def busy(self) -> bool:
        return self.request is not None


def pick_slot(free_slots: Sequence[_Slot], prompt: Sequence[int]) -> tuple[_Slot, int]:
    """The free slot whose cache shares the longest prefix with ``prompt``, and that length.

    The last prompt token is always evaluated again: its logits are where the
    answer starts.
    """
    # On a tie (nothing shared, typically) an empty slot goes first, so no
    # slot's cached task prefix is thrown away while another slot is unused.
    best = max(
        free_slots,
        key=lambda slot: (common_prefix_length(slot.cached, prompt), -len(slot.cached)),
    )
    return best, min(common_prefix_length(best.cached, prompt), len(prompt) - 1)


def plan_batch(slots: Sequence[_Slot], n_batch: int) -> list[tuple[_Slot, int, bool]]:
    """The next batch as (slot, token, wants logits) rows, taking the tokens from the slots.

    Slots with the fewest tokens pending go first, so every generating slot
    (one token) advances each step and a long new prompt fills what is left
    of ``n_batch``, in chunks over several steps if need be. Logits are asked
    for only where a slot's pending tokens end: that is where it samples.
    """
    budget = n_batch
    entries: list[tuple[_Slot, int, bool]] = []
    for slot in sorted((slot for slot in slots if slot.busy), key=lambda slot: len(slot.pending)):
        take = slot.pending[:budget]
        del slot.pending[: len(take)]
        budget -= len(take)
        entries.extend((slot, token, False) for token in take)
        if take and not slot.pending:
            entries[-1] = (slot, take[-1], True)
        if budget == 0:
            break
    return entries


class SequenceBatcher:
    """``sequences`` model calls decoded together in one context of a loaded model.

    ``llama_model`` is llama-cpp-python's ``_internals.LlamaModel`` (the
    weights a ``Llama`` already holds; they are not loaded twice), and
    ``base_params`` that ``Llama``'s context parameters: the batcher's context
    copies them (threads, flash attention, KV types), so a call decodes as it
    would serially. Each sequence gets ``n_ctx`` tokens of context of its own.
    """

    def __init__(
        self,
        llama_model: Any,
        base_params: Any,
        sequences: int,
        n_ctx: int,
        n_batch: int,
    ) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self._llama_cpp = llama_cpp
        self._internals = _internals
        self._model = llama_model
        self.n_ctx = n_ctx
        self._n_batch = n_batch
        params = type(base_params).from_buffer_copy(base_params)
        params.n_ctx = n_ctx * sequences
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = sequences
        # One KV stream per sequence: they share no prefix with each other.
        params.kv_unified = False
        try:
            self._context = _internals.LlamaContext(model=llama_model, params=params, verbose=False)
        except ValueError as exc:
            raise errors.ModelLoadError(
                f"could not make a context for {sequences} sequences of {n_ctx} tokens: {exc}"
            ) from exc
        self._batch = _internals.LlamaBatch(n_tokens=n_batch, embd=0, n_seq_max=1, verbose=False)
        self._vocab = llama_cpp.llama_model_get_vocab(llama_model.model)
        self._n_vocab = llama_model.n_vocab()
        self._slots = [_Slot(sequence) for sequence in range(sequences)]
        self.most_in_flight = 0  # the most calls decoded in one step so far
        self._waiting: queue.Queue[GenerationRequest | None] = queue.Queue()
        self._closed = threading.Event()
        self._accepting = threading.Lock()  # closing and queueing exclude each other
        self._thread = threading.Thread(target=self._run, name="sequence-batcher", daemon=True)
        self._thread.start()

    @property
    def sequences(self) -> int:
        return len(self._slots)

    def generate(self, request: GenerationRequest) -> Generation:
        """Queue ``request`` and wait for its answer (any thread may call this)."""
        if len(request.prompt) >= self.n_ctx:
            raise errors.ModelError(
                f"the model rejected the request: the prompt has {len(request.prompt)} tokens "
                f"and a sequence's context window is {self.n_ctx}"
            )
        with self._accepting:
            if self._closed.is_set():
                raise errors.ModelError("the model is shut down")
            self._waiting.put(request)
        while True:
            try:
                return request.future.result(timeout=5.0)
            except TimeoutError:
                if not self._thread.is_alive():  # it died: nobody will answer
                    raise errors.ModelError("the batched decoder stopped") from None

    def close(self) -> None:
        """Stop the scheduler, fail what is still waiting, and free the context."""
        with self._accepting:
            if self._closed.is_set():
                return
            self._closed.set()
            self._waiting.put(None)
        self._thread.join(timeout=60)
        if self._thread.is_alive():  # still decoding: freeing the context now would crash it
            logger.error("the batched decoder did not stop within 60 s; its context is kept")
            return
        shut_down = errors.ModelError("the model was shut down")
        for slot in self._slots:
            self._finish_with_error(slot, shut_down)
        while not self._waiting.empty():
            request = self._waiting.get_nowait()
            if request is not None:
                request.future.set_exception(shut_down)
        self._batch.close()
        self._context.close()

    # --- the scheduler thread -------------------------------------------------

    def _run(self) -> None:
        while not self._closed.is_set():
            self._admit_waiting(block=not any(slot.busy for slot in self._slots))
            if not any(slot.busy for slot in self._slots):
                continue
            try:
                self._step()
            except errors.SieveError as exc:
                self._fail_busy_slots(exc)
            except BaseException as exc:  # a native failure must not strand the callers
                logger.exception("batched decoding failed")
                self._fail_busy_slots(errors.ModelError(f"batched decoding failed: {exc}"))

    def _admit_waiting(self, block: bool) -> None:
        """Move waiting requests into free slots; wait for one when nothing is running."""
        while True:
            free = [slot for slot in self._slots if not slot.busy]
            if not free:
                return
            try:
                request = self._waiting.get(block=block, timeout=0.5 if block else None)
            except queue.Empty:
                return
            if request is None:
                return
            block = False
            try:
                self._admit(request, free)
            except BaseException as exc:  # this request only; the scheduler goes on
                logger.exception("could not start a batched call")
                request.future.set_exception(errors.ModelError(f"could not start the call: {exc}"))

    def _admit(self, request: GenerationRequest, free: Sequence[_Slot]) -> None:
        slot, reused = pick_slot(free, request.prompt)
        if not self._context.kv_cache_seq_rm(slot.sequence, reused, -1):
            # Memory that cannot drop a tail (recurrent models): start the slot over.
            self._context.kv_cache_seq_rm(slot.sequence, 0, -1)
            reused = 0
        del slot.cached[reused:]
        slot.request = request
        slot.pending = list(request.prompt[reused:])
        slot.generated = []
        slot.text = bytearray()
        slot.evaluated_prompt_tokens = len(slot.pending)
        slot.sampler = self._sampler_for(request.sampling)

    def _sampler_for(self, sampling: Sampling) -> Any:
        """llama.cpp's sampler chain, built as ``Llama._init_sampler`` builds it."""
        sampler = self._internals.LlamaSampler()
        sampler.add_penalties(
            n_vocab=self._n_vocab,
            penalty_last_n=PENALTY_LAST_N,
            penalty_repeat=sampling.repeat_penalty,
            penalty_freq=0.0,
            penalty_present=0.0,
        )
        if sampling.temperature == 0.0:
            sampler.add_greedy()
        else:
            sampler.add_top_k(sampling.top_k)
            sampler.add_typical(1.0, 1)
            sampler.add_top_p(sampling.top_p, 1)
            sampler.add_min_p(sampling.min_p, 1)
            sampler.add_temp(sampling.temperature)
            sampler.add_dist(sampling.seed)
        return sampler

    def _step(self) -> None:
        """One decode: a token per generating slot, then prompt chunks; then sample."""
        in_flight = sum(slot.busy for slot in self._slots)
        self.most_in_flight = max(self.most_in_flight, in_flight)
        entries = plan_batch(self._slots, self._n_batch)
        batch = self._batch.batch
        batch.n_tokens = len(entries)
        for row, (slot, token, wants_logits) in enumerate(entries):
            batch.token[row] = token
            batch.pos[row] = len(slot.cached)
            batch.n_seq_id[row] = 1
            batch.seq_id[row][0] = slot.sequence
            batch.logits[row] = wants_logits
            slot.cached.append(token)
        status = self._llama_cpp.llama_decode(self._context.ctx, batch)
        if status != 0:
            raise errors.ModelError(f"llama_decode returned {status}")
        for row, (slot, _token, wants_logits) in enumerate(entries):
            if wants_logits:
                self._sample(slot, row)

    def _sample(self, slot: _Slot, row: int) -> None:
        """Pick the slot's next token; a failure ends that call only."""
        try:
            self._sample_unguarded(slot, row)
        except errors.SieveError as exc:
            self._finish_with_error(slot, exc)
        except BaseException as exc:  # llguidance's panics are BaseExceptions
            logger.exception("sampling a batched call failed")
            self._finish_with_error(slot, errors.ModelError(f"sampling failed: {exc}"))

    def _sample_unguarded(self, slot: _Slot, row: int) -> None:
        request = slot.request
        assert request is not None
        if request.mask is not None:
            request.mask.mask(self._logits_row(row))
        token = slot.sampler.sample(self._context, row)
        if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self._finish(slot, "stop")
            return
        if request.mask is not None:
            request.mask.consume(token)
        slot.generated.append(token)
        slot.text += self._piece(token)
        if self._stopped_by_string(slot, request.stop):
            self._finish(slot, "stop")
        elif len(slot.generated) >= request.max_tokens or len(slot.cached) + 1 >= self.n_ctx:
            self._finish(slot, "length")
        else:
            slot.pending = [token]

    def _piece(self, token: int) -> bytes:
        """The bytes of one token (``LlamaModel.token_to_piece`` returns its padded buffer)."""
        buffer = ctypes.create_string_buffer(64)
        length = self._llama_cpp.llama_token_to_piece(
            self._vocab, token, buffer, len(buffer), 0, False
        )
        if length < 0:  # the piece is longer: llama.cpp says how long
            buffer = ctypes.create_string_buffer(-length)
            length = self._llama_cpp.llama_token_to_piece(
                self._vocab, token, buffer, len(buffer), 0, False
            )
        return buffer.raw[:length]

    def _logits_row(self, row: int) -> np.ndarray:
        """The logits of batch row ``row``, as a writable view of llama.cpp's buffer."""
        pointer = self._llama_cpp.llama_get_logits_ith(self._context.ctx, row)
        floats = ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float))
        return np.ctypeslib.as_array(floats, shape=(self._n_vocab,))

    @staticmethod
    def _stopped_by_string(slot: _Slot, stop: Sequence[str]) -> bool:
        """Cut the text at the first stop string, if one has appeared."""
        if not stop:
            return False
        text = slot.text.decode("utf-8", errors="ignore")
        found = [text.index(marker) for marker in stop if marker and marker in text]
        if not found:
            return False
        slot.text = bytearray(text[: min(found)].encode("utf-8"))
        return True

    def _finish(self, slot: _Slot, reason: Literal["stop", "length"]) -> None:
        request = slot.request
        assert request is not None
        generation = Generation(
            text=slot.text.decode("utf-8", errors="ignore"),
            completion_tokens=len(slot.generated),  # the end-of-generation token not counted
            finish_reason=reason,
            prompt_tokens=len(request.prompt),
            evaluated_prompt_tokens=slot.evaluated_prompt_tokens,
        )
        self._release(slot)
        request.future.set_result(generation)

    def _finish_with_error(self, slot: _Slot, error: BaseException) -> None:
        request = slot.request
        if request is None:
            return
        # What the cache holds past the failure is unknown: keep nothing.
        self._context.kv_cache_seq_rm(slot.sequence, 0, -1)
        slot.cached.clear()
        self._release(slot)
        request.future.set_exception(error)

    def _fail_busy_slots(self, error: BaseException) -> None:
        for slot in self._slots:
            self._finish_with_error(slot, error)

    @staticmethod
    def _release(slot: _Slot) -> None:
        slot.request = None
        slot.pending = []
        if slot.sampler is not None:
            with contextlib.suppress(Exception):
                slot.sampler.close()
        slot.sampler = None
