"""How many model processes this machine holds, and how many threads each gets.

Two facts decide a worker's throughput before any code runs:

- **Threads.** ggml's worker threads spin while they wait for each other, so
  more threads than cores across all model processes collapses generation
  (2 processes x 2 threads on 2 cores: 1.8-2.7 tok/s; x 1 thread: 16 tok/s).
  Each process therefore gets ``cores // processes`` threads (at least 1).
- **Memory.** Each process holds its own copy of the weights' working set, the
  projector, the KV cache at the configured ``n_ctx`` and llama.cpp's compute
  buffer. Starting more than fit makes the machine swap or the OOM killer
  take a child mid-item. The arithmetic uses the GGUF's own metadata, read
  without loading the model (``worker.gguf_metadata``).

Nothing here imports llama.cpp; ``sieve worker`` runs it before forking.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from worker import errors, gguf_metadata
from worker.config import ModelSettings, WorkerConfig

MIB = 1024 * 1024
# Python, the native libraries, llguidance's vocabulary table and the
# extractors, measured as a process's RSS above the model's own buffers.
PROCESS_OVERHEAD_BYTES = 200 * MIB
# Left to the operating system, the worker's main process and the page cache.
SYSTEM_RESERVE_BYTES = 1024 * MIB
KV_BYTES_PER_VALUE = 2  # llama.cpp's default KV cache type is f16
LOGIT_BYTES = 4  # float32 logits


def machine_cores() -> int:
    """Cores this process may run on (respects CPU affinity and cgroup pinning)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_process(processes: int, cores: int | None = None) -> int:
    """The default threads for each of ``processes`` model processes: an equal share."""
    return max(1, (cores or machine_cores()) // max(1, processes))


@dataclass(frozen=True)
class ThreadPlan:
    """Threads each model process gets, and a warning when the cores are oversubscribed."""

    threads: int
    processes: int
    cores: int
    warning: str | None


def plan_threads(configured: int | None, processes: int, cores: int | None = None) -> ThreadPlan:
    """Threads per process: ``configured`` if set, else an equal share of the cores."""
    cores = cores or machine_cores()
    threads = configured or threads_per_process(processes, cores)
    warning = None
    if threads * processes > cores:
        warning = (
            f"{processes} model process(es) x {threads} thread(s) = {threads * processes} "
            f"threads on {cores} core(s): ggml's threads spin while they wait, so "
            f"oversubscription collapses throughput; use SIEVE_MODEL__N_THREADS="
            f"{threads_per_process(processes, cores)} or leave it unset"
        )
    return ThreadPlan(threads=threads, processes=processes, cores=cores, warning=warning)


@dataclass(frozen=True)
class ModelFootprint:
    """What one loaded model process needs in memory, in bytes, by part."""

    weights: int
    projector: int
    kv_cache: int
    compute: int
    overhead: int

    @property
    def total(self) -> int:
        """Bytes one model process needs."""
        return self.weights + self.projector + self.kv_cache + self.compute + self.overhead


@dataclass(frozen=True)
class ModelShape:
    """The architecture figures the footprint depends on, from GGUF metadata."""

    layers: int
    kv_heads: int
    key_length: int
    value_length: int
    vocabulary: int

    @classmethod
    def from_gguf(cls, path: Path) -> ModelShape:
        """Read the shape from the model file's header (no weights are loaded)."""
        header = gguf_metadata.read_header(path)
        heads = int(header.model_value("attention.head_count"))
        embedding = int(header.model_value("embedding_length"))
        head_size = embedding // max(1, heads)
        return cls(
            layers=int(header.model_value("block_count")),
            kv_heads=int(header.model_value("attention.head_count_kv", heads)),
            key_length=int(header.model_value("attention.key_length", head_size)),
            value_length=int(header.model_value("attention.value_length", head_size)),
            vocabulary=header.array_lengths.get("tokenizer.ggml.tokens", 0),
        )

    def kv_cache_bytes(self, n_ctx: int) -> int:
        """The KV cache at ``n_ctx`` tokens.

        Sliding-window layers are counted at full size: llama-cpp-python
        allocates them so (its log: "using full-size SWA cache").
        """
        per_token = self.layers * self.kv_heads * (self.key_length + self.value_length)
        return per_token * n_ctx * KV_BYTES_PER_VALUE

    def compute_bytes(self, n_batch: int) -> int:
        """llama.cpp's compute buffer, dominated by logits for a full batch.

        Measured for the bundled model at n_batch=512: 514.5 MiB reserved,
        against 512 MiB for the logits term alone.
        """
        return n_batch * self.vocabulary * LOGIT_BYTES + 16 * MIB


def contexts_per_process(settings: ModelSettings) -> list[tuple[int, int]]:
    """(KV tokens, n_batch) of each llama.cpp context one model process makes.

    One context of ``n_ctx`` normally. With parallel sequences (and no
    projector, see ``worker.model.LocalModel``) the batcher's context holds
    ``n_ctx`` per sequence besides it: ``Llama``'s own serves deterministic calls.
    """
    serial = (settings.n_ctx, settings.n_batch)
    if batches_sequences(settings):
        return [(settings.n_ctx * settings.parallel_sequences, settings.n_batch), serial]
    return [serial]


def batches_sequences(settings: ModelSettings) -> bool:
    """Whether a model process with these settings decodes several sequences together."""
    return settings.parallel_sequences > 1 and settings.mmproj_path is None


def model_footprint(model_path: Path, settings: ModelSettings) -> ModelFootprint:
    """The memory one process needs for this model at these settings."""
    shape = ModelShape.from_gguf(model_path)
    projector = settings.mmproj_path
    contexts = contexts_per_process(settings)
    return ModelFootprint(
        weights=model_path.stat().st_size,
        projector=projector.stat().st_size if projector and projector.is_file() else 0,
        kv_cache=sum(shape.kv_cache_bytes(tokens) for tokens, _ in contexts),
        compute=sum(shape.compute_bytes(n_batch) for _, n_batch in contexts),
        overhead=PROCESS_OVERHEAD_BYTES,
    )


def available_memory() -> int:
    """Bytes the machine can give new processes now (``MemAvailable``)."""
    import psutil

    return int(psutil.virtual_memory().available)


def processes_that_fit(footprint: ModelFootprint, memory: int) -> int:
    """How many model processes ``memory`` bytes hold, after the system reserve."""
    return max(0, (memory - SYSTEM_RESERVE_BYTES) // footprint.total)


def largest_context_that_fits(
    footprint: ModelFootprint, kv_bytes_per_token: int, processes: int, memory: int
) -> int:
    """The largest ``n_ctx`` (a multiple of 512) at which ``processes`` fit; 0 if none."""
    per_process = (memory - SYSTEM_RESERVE_BYTES) // max(1, processes)
    room_for_kv = per_process - (footprint.total - footprint.kv_cache)
    if room_for_kv <= 0 or kv_bytes_per_token <= 0:
        return 0
    return (room_for_kv // kv_bytes_per_token) // 512 * 512


def check_processes_fit(
    model_path: Path, settings: ModelSettings, processes: int, memory: int
) -> ModelFootprint:
    """Refuse to start ``processes`` model processes that ``memory`` cannot hold.

    The message says how many would fit, and at what ``n_ctx`` the requested
    number would, so the operator can choose.
    """
    footprint = model_footprint(model_path, settings)
    fit = processes_that_fit(footprint, memory)
    if processes <= fit:
        return footprint
    # Every context but the tokenising one grows with n_ctx.
    growing = settings.parallel_sequences + 1 if batches_sequences(settings) else 1
    per_token = ModelShape.from_gguf(model_path).kv_cache_bytes(1) * growing
    context = largest_context_that_fits(footprint, per_token, processes, memory)
    at_context = (
        f"{processes} fit at n_ctx={context} (SIEVE_MODEL__N_CTX)"
        if context
        else f"{processes} do not fit at any n_ctx; lower SIEVE_MODEL__N_BATCH or start fewer"
    )
    raise errors.ConfigurationError(
        f"{processes} model process(es) need {_gib(processes * footprint.total)} "
        f"({_gib(footprint.total)} each: weights {_gib(footprint.weights)}, projector "
        f"{_gib(footprint.projector)}, KV cache {_gib(footprint.kv_cache)} at "
        f"n_ctx={settings.n_ctx}{_per_sequence(settings)}, compute {_gib(footprint.compute)}) but "
        f"{_gib(memory)} is available with {_gib(SYSTEM_RESERVE_BYTES)} kept for the "
        f"system: {fit} fit at n_ctx={settings.n_ctx}; {at_context}"
    )


def _per_sequence(settings: ModelSettings) -> str:
    sequences = settings.parallel_sequences
    return f" x ({sequences} sequences + 1)" if batches_sequences(settings) else ""


def _gib(size: int) -> str:
    return f"{size / (1024 * MIB):.2f} GiB"


def size_worker(
    config: WorkerConfig, processes: int, memory: int | None = None, cores: int | None = None
) -> tuple[WorkerConfig, ThreadPlan]:
    """``config`` for ``processes`` model processes on this machine, and its thread plan.

    Raises :class:`worker.errors.ConfigurationError` when the processes do not
    fit in memory. The returned config carries the process count and the
    threads each child loads its model with.
    """
    from worker.model import resolve_model_path  # model imports this module

    model_path = resolve_model_path(config.model)
    check_processes_fit(
        model_path, config.model, processes, available_memory() if memory is None else memory
    )
    plan = plan_threads(config.model.n_threads, processes, cores)
    sized = config.model_copy(
        update={
            "model": config.model.model_copy(update={"n_threads": plan.threads}),
            "worker": config.worker.model_copy(update={"concurrency": processes}),
        }
    )
    return sized, plan
