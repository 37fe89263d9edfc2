"""Lanes: the threads of one process that each work on an item at once.

With ``model.parallel_sequences`` above 1, one model process serves several
items together (its batcher decodes their calls in one batch), each item on
a thread of its own: a lane. Every lane takes its leases under an identity of
its own (``role@host:pid/lane``): the pipeline treats a live lease held by its
own identity as its own attempt resuming, so lanes sharing one identity could
both work on a redelivered item.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading

from worker import leases
from worker.pipeline import PipelineContext


class LaneContexts:
    """One pipeline context per thread: the same model and database, its own identity."""

    def __init__(self, shared: PipelineContext) -> None:
        self._shared = shared
        self._local = threading.local()
        self._numbers = itertools.count(1)
        self._numbering = threading.Lock()

    def for_this_thread(self) -> PipelineContext:
        """This thread's context, made on its first call."""
        context: PipelineContext | None = getattr(self._local, "context", None)
        if context is None:
            with self._numbering:
                lane = next(self._numbers)
            context = dataclasses.replace(
                self._shared, worker_id=leases.lane_identity(self._shared.worker_id, lane)
            )
            self._local.context = context
        return context
