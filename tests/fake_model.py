"""A model for the unit layer: the pipeline's model protocol, answered in microseconds.

It is not a mock of the thing under test (the pipeline, analysis, leases and
retries are real): it stands in for llama.cpp only. Tokens are words, so
budgets and windows are easy to reason about; every answer is the smallest
document that validates against the task's schema, with the call number in
its strings so tests can tell calls apart, unless ``rewrite`` turns it into
the answer a test needs. ``script`` lets a test run code (raise an error,
steal a lease) at a given call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.model import BUNDLED_MODEL_NAME, Completion, ModelInfo


def minimal_instance(schema: dict[str, Any], marker: str) -> Any:
    """The smallest value that validates against ``schema`` (the subset task specs use)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: minimal_instance(properties[name], marker) for name in schema.get("required", [])
        }
    if kind == "array":
        return [
            minimal_instance(schema.get("items", {}), marker)
            for _ in range(schema.get("minItems", 0))
        ]
    if kind == "string":
        text = marker[: schema.get("maxLength", len(marker))]
        return text.ljust(schema.get("minLength", 0), "x")
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


@dataclass
class FakeModel:
    """Implements :class:`worker.pipeline.PipelineModel` without a GGUF."""

    context_tokens: int = 2048
    image_tokens: int = 0
    answer_padding_words: int = 0  # lengthen every string answer (up to its maxLength)
    script: dict[int, Callable[[], None]] = field(default_factory=dict)
    # Turns the minimal answer into the one a test needs, given the call's content.
    rewrite: Callable[[dict[str, Any], str], dict[str, Any]] | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    info: ModelInfo = field(
        default_factory=lambda: ModelInfo(
            # The bundled model's name: runs submitted with default settings
            # ask for it, and a worker serves only the model its runs ask for.
            name=BUNDLED_MODEL_NAME,
            path="/nonexistent/fake.gguf",
            sha256="f" * 64,
            mmproj_path=None,
            n_ctx=2048,
            supports_vision=False,
            supports_audio=False,
        )
    )
    _counter: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def sampling(self) -> dict[str, Any]:
        return {"temperature": 0.0, "n_ctx": self.context_tokens}

    @property
    def seed(self) -> int:
        return 7

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def truncate_to_tokens(self, text: str, max_tokens: int) -> str:
        return " ".join(text.split()[:max_tokens])

    def complete_json(
        self,
        instructions: str,
        content: str,
        schema: dict[str, Any],
        max_tokens: int,
        images: Sequence[str] = (),
        deterministic: bool = False,
    ) -> Completion:
        number = next(self._counter)
        self.calls.append(
            {"instructions": instructions, "content": content, "images": list(images)}
        )
        if number in self.script:
            self.script[number]()
        marker = " ".join([f"answer {number}"] + ["filler"] * self.answer_padding_words)
        output = minimal_instance(schema, marker)
        if self.rewrite is not None:
            output = self.rewrite(dict(output), content)
        prompt_tokens = self.count_tokens(instructions) + self.count_tokens(content)
        return Completion(str(output), output, prompt_tokens, 5, 0.0)
