"""The batcher's scheduling decisions, without a model: slot choice and batch plans.

Decoding itself needs llama.cpp and is in ``tests/integration/test_parallel_sequences.py``.
"""

from __future__ import annotations

from worker.prefix_cache import common_prefix_length
from worker.sequence_batcher import (
    GenerationRequest,
    Sampling,
    _Slot,
    pick_slot,
    plan_batch,
)

GREEDY = Sampling(temperature=0.0, top_p=0.95, repeat_penalty=1.1, seed=1)


def _busy(sequence: int, pending: list[int]) -> _Slot:
    slot = _Slot(sequence, request=GenerationRequest(prompt=pending, max_tokens=8, sampling=GREEDY))
    slot.pending = list(pending)
    return slot


def test_common_prefix_length_counts_leading_tokens_in_common() -> None:
    assert common_prefix_length([1, 2, 3, 4], [1, 2, 9]) == 2
    assert common_prefix_length([], [1]) == 0
    assert common_prefix_length([5, 6], [5, 6]) == 2


def test_a_request_goes_to_the_free_slot_that_already_holds_its_prefix() -> None:
    other_task = _Slot(0, cached=[7, 7, 7, 7])
    same_task = _Slot(1, cached=[1, 2, 3, 4, 50, 51])
    slot, reused = pick_slot([other_task, same_task], [1, 2, 3, 4, 60, 61, 62])
    assert slot is same_task
    assert reused == 4


def test_a_prompt_sharing_nothing_takes_an_empty_slot_rather_than_evict_a_cached_one() -> None:
    cached = _Slot(0, cached=[7, 7, 7, 7])
    empty = _Slot(1)
    slot, reused = pick_slot([cached, empty], [1, 2, 3])
    assert slot is empty and reused == 0


def test_the_last_prompt_token_is_evaluated_again_even_when_all_of_it_is_cached() -> None:
    _, reused = pick_slot([_Slot(0, cached=[1, 2, 3, 4])], [1, 2, 3])
    assert reused == 2


def test_generating_slots_go_first_and_a_long_prompt_fills_the_rest_in_chunks() -> None:
    generating = [_busy(0, [11]), _busy(1, [12])]
    prompt = _busy(2, list(range(100, 110)))
    first = plan_batch([prompt, *generating], n_batch=6)
    assert [(slot.sequence, token, logits) for slot, token, logits in first] == [
        (0, 11, True),
        (1, 12, True),
        (2, 100, False),
        (2, 101, False),
        (2, 102, False),
        (2, 103, False),
    ]
    generating[0].pending, generating[1].pending = [21], [22]
    second = plan_batch([prompt, *generating], n_batch=16)
    assert [token for _, token, _ in second] == [21, 22, *range(104, 110)]
    # Logits only where the prompt ends: that is where its answer starts.
    assert [logits for slot, _, logits in second if slot is prompt] == [False] * 5 + [True]
    assert prompt.pending == []


def test_idle_slots_are_not_in_the_batch() -> None:
    assert plan_batch([_Slot(0), _Slot(1, cached=[1, 2])], n_batch=8) == []
