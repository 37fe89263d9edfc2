"""Asking the model about one document: map over page windows, then reduce."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker import errors, grounding, windowing
from worker.model import Completion
from worker.task_specs import TaskSpec

# Tokens the chat template wraps around the two messages; measured at under 40
# for the llama-2 fallback and Gemma's template, with room to spare.
CHAT_TEMPLATE_OVERHEAD_TOKENS = 64


class JsonModel(Protocol):
    """What analysis needs from a model (worker.model.LocalModel provides it)."""

    @property
    def context_tokens(self) -> int: ...

    @property
    def image_tokens(self) -> int:
        """Context one image takes; 0 for a model that cannot see."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def truncate_to_tokens(self, text: str, max_tokens: int) -> str: ...

    def complete_json(
        self,
        instructions: str,
        content: str,
        schema: dict[str, Any],
        max_tokens: int,
        images: Sequence[str] = (),
        deterministic: bool = False,
    ) -> Completion: ...


@dataclass
class Analysis:
    """The answer for one document and what producing it cost."""

    output: dict[str, Any]
    citations: list[str]
    partials: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0
    images_sent: int = 0
    grounding: dict[str, Any] | None = None  # the answer's quotes checked (worker/grounding.py)

    def add(self, completion: Completion) -> None:
        """Account for one model call."""
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.model_calls += 1


def analyse_document(
    model: JsonModel,
    task: TaskSpec,
    document_name: str,
    pieces: Sequence[windowing.LabelledText],
    max_output_tokens: int,
    heartbeat: Callable[[], None] = lambda: None,
    max_images_per_call: int = 4,
    deterministic: bool = False,
) -> Analysis:
    """Run ``task`` over a document's labelled text; combine windows if needed.

    ``heartbeat`` is called after every model call (and before a failed call's
    error propagates): whatever it raises, typically the lease-lost error, ends
    the analysis. ``deterministic`` asks every call for greedy decoding from a
    fresh context (the same item, model and task then give the same answer). Raises
    :class:`~worker.errors.ModelError` when the context cannot hold the partial
    answers to combine them.
    """
    if not any(piece.text.strip() or piece.image_path for piece in pieces):
        raise errors.NothingToAnalyseError("the document has no text")
    header = f"Document: {document_name}\n\n"
    analysis = Analysis(output={}, citations=[])

    def ask(instructions: str, body: str, images: Sequence[str] = ()) -> dict[str, Any]:
        try:
            completion = model.complete_json(
                instructions,
                header + body,
                task.schema,
                max_output_tokens,
                images,
                deterministic=deterministic,
            )
        except errors.SieveError:
            heartbeat()  # an answer cut short because the lease was lost is not a model error
            raise
        heartbeat()
        task.validate(completion.output)
        analysis.add(completion)
        analysis.images_sent += len(images)
        return completion.output

    windows = windowing.plan_windows(
        pieces,
        _budget(model, task.instructions, header, max_output_tokens),
        model.count_tokens,
        model.truncate_to_tokens,
        model.image_tokens,
        max_images_per_call,
    )
    answers = [(window, ask(task.instructions, window.text, window.images)) for window in windows]
    analysis.citations = list(dict.fromkeys(label for window in windows for label in window.labels))
    if len(answers) > 1:
        analysis.partials = [
            {"cites": list(window.labels), "span": window.span, "output": answer}
            for window, answer in answers
        ]
    reduce_budget = _budget(model, task.reduce_instructions, header, max_output_tokens)
    while len(answers) > 1:
        pieces_to_reduce = windowing.partial_answers_as_pieces(answers)
        reduce_windows = windowing.plan_windows(
            pieces_to_reduce, reduce_budget, model.count_tokens, model.truncate_to_tokens
        )
        if len(reduce_windows) >= len(answers):
            raise errors.ModelError(
                "the context window is too small to combine the partial answers; raise n_ctx"
            )
        answers = [
            (_merged_window(window, answers), ask(task.reduce_instructions, window.text))
            for window in reduce_windows
        ]
    analysis.output = answers[0][1]
    analysis.grounding = grounding.check_quotes(
        analysis.output, {piece.label: piece.text for piece in pieces}
    )
    return analysis


def _budget(model: JsonModel, instructions: str, header: str, max_output_tokens: int) -> int:
    """Tokens left for document text once instructions and the answer are reserved."""
    return (
        model.context_tokens
        - model.count_tokens(instructions)
        - model.count_tokens(header)
        - max_output_tokens
        - CHAT_TEMPLATE_OVERHEAD_TOKENS
    )


def _merged_window(
    reduce_window: windowing.Window, answers: Sequence[tuple[windowing.Window, dict[str, Any]]]
) -> windowing.Window:
    """The page labels covered by a reduce window, for the next round's headings."""
    spans = set(reduce_window.labels)
    labels = [label for window, _ in answers if window.span in spans for label in window.labels]
    return windowing.Window(tuple(labels) or reduce_window.labels, reduce_window.text)
