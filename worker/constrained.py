"""Constrained decoding: the model may only emit JSON its task's schema admits.

Two engines, selected by ``ModelSettings.constraint_engine``:

``llguidance`` (default)
    A token-mask engine. Before each sampled token it computes, from the
    grammar state, the set of vocabulary entries that keep the output valid,
    as a bitmask, and the worker sets every other logit to -inf. The cost is
    one mask per token, independent of vocabulary size in practice: measured
    here at 0.99 of free generation with Gemma's 262k-token vocabulary
    (``bench/RESULTS.md``, row ``constrained_output``).
``gbnf``
    llama.cpp's own GBNF grammar from ``LlamaGrammar.from_json_schema``. It
    checks candidate tokens one by one, which with a 262k vocabulary ran at
    about 0.4 of free generation. Kept as a selectable fallback.

Either way the stored answer is validated against the schema afterwards
(``worker.task_specs``); the engine only makes a valid answer the likely one.

This module knows nothing of the database or Celery.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from worker import errors

ENGINES = ("llguidance", "gbnf")

# A logits processor as llama-cpp-python calls it: (all token ids so far, logits).
LogitsProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def strict_whitespace(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with llguidance told to admit no whitespace between JSON tokens.

    With flexible whitespace a tiny model fills strings and gaps with newlines
    and spaces until ``max_tokens`` runs out (measured with the 270M model).
    """
    options = dict(schema.get("x-guidance", {}))
    options.setdefault("whitespace_flexible", False)
    return {**schema, "x-guidance": options}


class TokenMaskEngine:
    """llguidance bound to one loaded model's vocabulary; one per process.

    Building the tokenizer reads every vocabulary entry (about 3 s for 262k
    tokens), so it happens once, at model load; compiled grammars are cached
    per schema.
    """

    def __init__(self, llama: Any) -> None:
        import llguidance
        import llguidance.llamacpp

        self._llguidance = llguidance
        with warnings.catch_warnings():
            # llguidance 1.9's adapter calls llama_token_get_attr, which
            # llama-cpp-python 0.3.36 deprecates (same function, renamed).
            warnings.simplefilter("ignore", DeprecationWarning)
            self._tokenizer = llguidance.llamacpp.lltokenizer_from_vocab(llama._model.vocab)
        self._grammars: dict[str, str] = {}

    def grammar_for(self, schema: dict[str, Any]) -> str:
        """The compiled llguidance grammar for ``schema`` (cached)."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            grammar = self._llguidance.grammar_from(
                "json_schema", json.dumps(strict_whitespace(schema))
            )
            is_error, problems = self._llguidance.LLMatcher.validate_grammar_with_warnings(
                grammar, self._tokenizer
            )
            if is_error:
                raise errors.ConfigurationError(
                    f"the task schema cannot be enforced: {'; '.join(problems)}"
                )
            self._grammars[key] = grammar
        return self._grammars[key]

    def schema_mask(self, schema: dict[str, Any]) -> SchemaMask:
        """A fresh mask for one model call (its matcher holds the call's grammar state)."""
        matcher = self._llguidance.LLMatcher(self._tokenizer, self.grammar_for(schema), log_level=0)
        return SchemaMask(matcher)

    def logits_processor(self, schema: dict[str, Any]) -> LogitsProcessor:
        """The mask as llama-cpp-python's ``logits_processor`` for one call."""
        return self.schema_mask(schema)


class SchemaMask:
    """The per-call logits processor: feed the last token in, mask the next.

    llama-cpp-python passes every token id so far (prompt included). The first
    call marks where the prompt ends; each later call hands the matcher the
    tokens sampled since the previous one, then masks the logits.
    """

    def __init__(self, matcher: Any) -> None:
        self._matcher = matcher
        self._consumed_until: int | None = None
        self._bitmask: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        if self._consumed_until is None:
            self._consumed_until = len(input_ids)
        for token in input_ids[self._consumed_until :]:
            self.consume(int(token))
        self._consumed_until = len(input_ids)
        self.mask(logits)
        return logits

    def consume(self, token: int) -> None:
        """Advance the grammar state past one sampled token."""
        self._matcher.consume_token(token)

    def mask(self, logits: np.ndarray) -> None:
        """Set, in place, every logit the grammar does not admit next to -inf."""
        if self._matcher.is_error():
            raise errors.ModelOutputInvalidError(
                f"the constrained decoder failed: {self._matcher.get_error()}"
            )
        allowed = self._allowed_tokens(len(logits))
        logits[~allowed] = -np.inf

    def _allowed_tokens(self, vocabulary_size: int) -> np.ndarray:
        """A boolean vector over the vocabulary: which tokens keep the JSON valid."""
        words = (vocabulary_size + 31) // 32
        if self._bitmask is None or self._bitmask.size != words:
            self._bitmask = np.zeros(words, dtype=np.int32)
        self._matcher.unsafe_compute_mask_ptr(self._bitmask.ctypes.data, self._bitmask.nbytes)
        bits = np.unpackbits(self._bitmask.view(np.uint8), bitorder="little")
        return bits[:vocabulary_size].astype(bool)


class GbnfEngine:
    """llama.cpp's GBNF grammar: the fallback, slower with large vocabularies."""

    def __init__(self) -> None:
        self._grammars: dict[str, Any] = {}

    def grammar_for(self, schema: dict[str, Any]) -> Any:
        """The llama.cpp grammar object for ``schema`` (cached)."""
        from llama_cpp import LlamaGrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = LlamaGrammar.from_json_schema(key, verbose=False)
        return self._grammars[key]


def decoding_arguments(engine: TokenMaskEngine | GbnfEngine, schema: dict[str, Any]) -> dict:
    """The keyword arguments of ``create_chat_completion`` that enforce ``schema``."""
    if isinstance(engine, TokenMaskEngine):
        return {"logits_processor": [engine.logits_processor(schema)]}
    return {"grammar": engine.grammar_for(schema)}
