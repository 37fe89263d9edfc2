"""Several items in flight in one model context: does batching sequences pay here?

llama.cpp can decode several sequences in one batch (``llama-server
--parallel``): each step feeds one token per sequence, so the weights are read
once for all of them. llama-cpp-python's high-level ``Llama`` drives one
sequence, so this row uses the low-level API on a context of its own:
greedy generation, the same prompts, 1, 2 and 4 sequences at once.
"""

from __future__ import annotations

import ctypes
import time

import numpy as np

from bench.rows import Row
from worker.config import ModelSettings
from worker.model import resolve_model_path

PROMPTS = [
    "The harbour master wrote to the pilots about",
    "Minutes of the safety committee: the forklift",
    "The supplier contract with Acme Ltd says that",
    "Counsel advised the board that the merger",
]


def _tokens_per_second(model: object, sequences: int, new_tokens: int, threads: int) -> float:
    """Aggregate generated tok/s with ``sequences`` decoded together."""
    import llama_cpp

    params = llama_cpp.llama_context_default_params()
    params.n_ctx = 1024 * sequences
    params.n_batch = 512
    params.n_seq_max = sequences
    params.n_threads = params.n_threads_batch = threads
    context = llama_cpp.llama_init_from_model(model, params)
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    batch = llama_cpp.llama_batch_init(512, 0, sequences)
    try:
        prompts = [_tokenize(vocab, PROMPTS[n % len(PROMPTS)]) for n in range(sequences)]
        positions = [0] * sequences
        # The prompts, all in one batch; logits for each prompt's last token.
        entries = [
            (token, n, position, position == len(prompt) - 1)
            for n, prompt in enumerate(prompts)
            for position, token in enumerate(prompt)
        ]
        _decode(context, batch, entries)
        positions = [len(prompt) for prompt in prompts]
        last = [_greedy(context, i, n_vocab) for i in _output_rows(entries)]
        started = time.perf_counter()
        for _ in range(new_tokens - 1):
            entries = [(last[n], n, positions[n], True) for n in range(sequences)]
            _decode(context, batch, entries)
            positions = [p + 1 for p in positions]
            last = [_greedy(context, i, n_vocab) for i in range(sequences)]
        seconds = time.perf_counter() - started
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(context)
    return sequences * (new_tokens - 1) / seconds


def _tokenize(vocab: object, text: str) -> list[int]:
    import llama_cpp

    data = text.encode()
    buffer = (llama_cpp.llama_token * (len(data) + 8))()
    count = llama_cpp.llama_tokenize(vocab, data, len(data), buffer, len(buffer), True, False)
    return list(buffer[:count])


def _decode(context: object, batch: object, entries: list[tuple[int, int, int, bool]]) -> None:
    import llama_cpp

    batch.n_tokens = len(entries)
    for i, (token, sequence, position, wants_logits) in enumerate(entries):
        batch.token[i] = token
        batch.pos[i] = position
        batch.n_seq_id[i] = 1
        batch.seq_id[i][0] = sequence
        batch.logits[i] = wants_logits
    if llama_cpp.llama_decode(context, batch) != 0:
        raise RuntimeError("llama_decode failed")


def _output_rows(entries: list[tuple[int, int, int, bool]]) -> list[int]:
    return [i for i, entry in enumerate(entries) if entry[3]]


def _greedy(context: object, row: int, n_vocab: int) -> int:
    import llama_cpp

    pointer = llama_cpp.llama_get_logits_ith(context, row)
    logits = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), (n_vocab,))
    return int(np.argmax(logits))


def parallel_sequences(settings: ModelSettings, new_tokens: int = 64) -> Row:
    """Aggregate tok/s with 4 sequences in one batch vs 1; notes hold 1, 2 and 4."""
    import llama_cpp

    from worker import capacity

    # A quiet Llama only to hold the weights; each measurement makes its own context.
    holder = llama_cpp.Llama(str(resolve_model_path(settings)), n_ctx=256, verbose=False)
    threads = capacity.machine_cores()
    try:
        rates = {
            n: _tokens_per_second(holder._model.model, n, new_tokens, threads) for n in (1, 2, 4)
        }
    finally:
        holder.close()
    return Row(
        "parallel_sequences",
        rates[4],
        rates[1],
        "tok/s aggregate (4 in flight vs 1)",
        notes={"tok_s": {str(n): round(rate, 1) for n, rate in rates.items()}},
    )
