"""A saved KV state per task prefix, so interleaved tasks do not re-read their instructions.

llama.cpp reuses the longest token prefix a call shares with the previous call
in the same context. With one task per worker that covers the instructions;
when two tasks interleave (a review job's 600-token instruction, then a
summary, then the review again) each call evaluates its whole instruction
anew. This cache keeps, per task, the KV cells of the prompt prefix that every
call of that task shares, and restores them before a call whenever the
context holds something else.

The prefix is learned, not assumed: after a task's second call it is the
longest common token prefix of the two prompts (the formatted system message
and what the chat template puts around it), so it is right for any template.

Only sequence 0's KV cells are saved (``llama_state_seq_get_data``):
``Llama.save_state`` would also copy the logits table, n_batch x vocabulary
floats (512 MiB for Gemma's 262k vocabulary), on every save.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# A prefix shorter than this is not worth a save and a restore.
MIN_PREFIX_TOKENS = 32
SEQUENCE = 0


@dataclass
class _TaskPrefix:
    """What is known of one task's prefix: the last prompt, and the saved state."""

    last_prompt: list[int]
    tokens: list[int] | None = None
    state: bytes | None = None


class PrefixCache:
    """Saved prefix states for up to ``capacity`` tasks, least recently used evicted."""

    def __init__(self, llama: Any, capacity: int = 8) -> None:
        self._llama = llama
        self._capacity = capacity
        self._tasks: OrderedDict[str, _TaskPrefix] = OrderedDict()
        self.restores = 0  # for bench and tests: how often a saved prefix was put back

    def before_call(self, task_key: str) -> None:
        """Put the task's saved prefix into the context unless it is already there."""
        entry = self._tasks.get(task_key)
        if entry is None or entry.state is None or entry.tokens is None:
            return
        self._tasks.move_to_end(task_key)
        if self._context_starts_with(entry.tokens):
            return
        self._restore(entry)
        self.restores += 1

    def after_call(self, task_key: str, prompt_tokens: int) -> None:
        """Learn the task's prefix from this call's prompt; save its state once known."""
        prompt = self._llama.input_ids[:prompt_tokens].tolist()
        entry = self._tasks.get(task_key)
        if entry is None:
            self._remember(task_key, _TaskPrefix(last_prompt=prompt))
            return
        shared = common_prefix_length(entry.last_prompt, prompt)
        entry.last_prompt = prompt
        if shared < MIN_PREFIX_TOKENS or (entry.tokens is not None and shared >= len(entry.tokens)):
            return
        # First learned, or shorter than thought (two prompts shared more by chance).
        entry.tokens = prompt[:shared]
        entry.state = self._save_prefix(shared)

    def _remember(self, task_key: str, entry: _TaskPrefix) -> None:
        self._tasks[task_key] = entry
        while len(self._tasks) > self._capacity:
            self._tasks.popitem(last=False)

    def _context_starts_with(self, tokens: list[int]) -> bool:
        n_tokens = self._llama.n_tokens
        if n_tokens < len(tokens):
            return False
        return bool(np.array_equal(self._llama.input_ids[: len(tokens)], tokens))

    def _save_prefix(self, length: int) -> bytes:
        """Cut the context back to the prefix and copy its KV cells out."""
        import llama_cpp

        self._llama._ctx.kv_cache_seq_rm(SEQUENCE, length, -1)
        self._llama.n_tokens = length
        self._llama._requires_eval = True
        context = self._llama._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(context, SEQUENCE)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(context, buffer, size, SEQUENCE)
        return bytes(buffer[:written])

    def _restore(self, entry: _TaskPrefix) -> None:
        import llama_cpp

        assert entry.state is not None and entry.tokens is not None
        self._llama._ctx.kv_cache_seq_rm(SEQUENCE, 0, -1)
        buffer = (ctypes.c_uint8 * len(entry.state)).from_buffer_copy(entry.state)
        read = llama_cpp.llama_state_seq_set_data(
            self._llama._ctx.ctx, buffer, len(entry.state), SEQUENCE
        )
        length = len(entry.tokens)
        if read == 0:  # the context refused it: fall back to a full evaluation
            self._llama._ctx.kv_cache_clear()
            self._llama.n_tokens = 0
            entry.state = None
            return
        self._llama.input_ids[:length] = entry.tokens
        self._llama.n_tokens = length
        # The logits belong to whatever ran last: the next decode must refresh them.
        self._llama._requires_eval = True


def common_prefix_length(first: Sequence[int], second: Sequence[int]) -> int:
    """How many leading tokens ``first`` and ``second`` have in common."""
    length = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        length += 1
    return length
