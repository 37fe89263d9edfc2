"""Threads and memory arithmetic for model processes, from real GGUF headers."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from worker import capacity, errors, gguf_metadata
from worker.config import ModelSettings, WorkerConfig

GIB = 1024**3


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf_header(path: Path, scalars: dict[str, int | str], vocabulary: int) -> Path:
    """A GGUF file with only a header: the architecture keys and a token list."""
    body = b""
    for key, value in scalars.items():
        if isinstance(value, str):
            body += _string(key) + struct.pack("<I", 8) + _string(value)
        else:
            body += _string(key) + struct.pack("<II", 4, value)
    tokens = b"".join(_string(f"t{n}") for n in range(vocabulary))
    body += _string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, vocabulary) + tokens
    body += _string("general.file_type") + struct.pack("<II", 4, 15)
    count = len(scalars) + 2
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, count) + body + b"\0" * 4096)
    return path


@pytest.fixture
def small_gguf(tmp_path: Path) -> Path:
    return write_gguf_header(
        tmp_path / "m.gguf",
        {
            "general.architecture": "llama",
            "llama.block_count": 4,
            "llama.embedding_length": 256,
            "llama.attention.head_count": 4,
            "llama.attention.head_count_kv": 2,
        },
        vocabulary=1000,
    )


def test_the_header_reader_returns_scalars_and_array_lengths(small_gguf: Path) -> None:
    header = gguf_metadata.read_header(small_gguf)
    assert header.architecture == "llama"
    assert header.model_value("block_count") == 4
    assert header.array_lengths["tokenizer.ggml.tokens"] == 1000
    assert header.scalars["general.file_type"] == 15
    with pytest.raises(errors.ConfigurationError, match=r"llama\.rope"):
        header.model_value("rope.freq_base")


@pytest.mark.parametrize("content", [b"", b"GGML" + b"\0" * 40, b"GGUF\x03\0\0\0" + b"\x05"])
def test_a_file_that_is_not_gguf_gets_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(errors.ConfigurationError, match="GGUF"):
        gguf_metadata.read_header(path)


def test_the_shape_defaults_head_sizes_from_the_embedding_width(small_gguf: Path) -> None:
    shape = capacity.ModelShape.from_gguf(small_gguf)
    assert (shape.layers, shape.kv_heads, shape.key_length, shape.value_length) == (4, 2, 64, 64)
    # 4 layers x 2 KV heads x (64 + 64) values x 2 bytes per token.
    assert shape.kv_cache_bytes(1000) == 4 * 2 * 128 * 2 * 1000
    assert shape.compute_bytes(512) == 512 * 1000 * 4 + 16 * capacity.MIB


def test_the_bundled_model_footprint_matches_llama_cpp_s_own_figures() -> None:
    """llama.cpp logs a 72 MiB KV cache and a 514.5 MiB compute buffer at these settings."""
    from worker.model import bundled_model_path

    footprint = capacity.model_footprint(bundled_model_path(), ModelSettings(n_ctx=4096))
    assert footprint.kv_cache == 72 * capacity.MIB
    assert abs(footprint.compute - 514.5 * capacity.MIB) < 16 * capacity.MIB


def test_processes_that_do_not_fit_are_refused_saying_what_would(small_gguf: Path) -> None:
    settings = ModelSettings(path=small_gguf, n_ctx=4096)
    one = capacity.model_footprint(small_gguf, settings).total
    memory = capacity.SYSTEM_RESERVE_BYTES + 2 * one + 1
    assert capacity.check_processes_fit(small_gguf, settings, 2, memory).total == one
    with pytest.raises(errors.ConfigurationError) as refused:
        capacity.check_processes_fit(small_gguf, settings, 3, memory)
    assert "2 fit at n_ctx=4096" in refused.value.message


def test_the_refusal_names_the_context_at_which_the_processes_fit(small_gguf: Path) -> None:
    big_context = ModelSettings(path=small_gguf, n_ctx=1 << 20)
    small_context = ModelSettings(path=small_gguf, n_ctx=2048)
    memory = (
        capacity.SYSTEM_RESERVE_BYTES
        + 2 * capacity.model_footprint(small_gguf, small_context).total
    )
    with pytest.raises(errors.ConfigurationError) as refused:
        capacity.check_processes_fit(small_gguf, big_context, 2, memory)
    assert "2 fit at n_ctx=2048" in refused.value.message


@pytest.mark.parametrize(
    ("processes", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 16, 8), (3, 16, 5)]
)
def test_each_process_gets_an_equal_share_of_the_cores(
    processes: int, cores: int, threads: int
) -> None:
    plan = capacity.plan_threads(None, processes, cores)
    assert plan.threads == threads
    assert (plan.warning is None) == (processes <= cores)


def test_an_oversubscribed_thread_setting_is_warned_about() -> None:
    plan = capacity.plan_threads(2, 2, cores=2)
    assert plan.threads == 2
    assert plan.warning is not None and "SIEVE_MODEL__N_THREADS=1" in plan.warning
    assert capacity.plan_threads(1, 2, cores=2).warning is None


def test_size_worker_hands_the_children_their_threads(small_gguf: Path) -> None:
    config = WorkerConfig(data_dir=small_gguf.parent, model=ModelSettings(path=small_gguf))
    sized, plan = capacity.size_worker(config, 2, memory=64 * GIB, cores=4)
    assert sized.model.n_threads == plan.threads == 2
    assert sized.worker.concurrency == 2
    with pytest.raises(errors.ConfigurationError, match="need"):
        capacity.size_worker(config, 2, memory=GIB, cores=4)


def test_parallel_sequences_hold_a_kv_cache_each_besides_the_serial_context(
    small_gguf: Path,
) -> None:
    shape = capacity.ModelShape.from_gguf(small_gguf)
    serial = capacity.model_footprint(small_gguf, ModelSettings(n_ctx=4096, n_batch=512))
    batched = capacity.model_footprint(
        small_gguf, ModelSettings(n_ctx=4096, n_batch=512, parallel_sequences=4)
    )
    assert serial.kv_cache == shape.kv_cache_bytes(4096)
    # The batcher's context, plus Llama's own (it serves deterministic calls).
    assert batched.kv_cache == shape.kv_cache_bytes(5 * 4096)
    assert batched.compute == 2 * shape.compute_bytes(512)
    with_projector = ModelSettings(n_ctx=4096, parallel_sequences=4, mmproj_path=small_gguf)
    assert capacity.contexts_per_process(with_projector) == [(4096, 512)]


def test_a_refusal_with_parallel_sequences_counts_their_contexts(small_gguf: Path) -> None:
    settings = ModelSettings(path=small_gguf, n_ctx=1 << 16, parallel_sequences=4)
    fits_at_2048 = capacity.model_footprint(
        small_gguf, settings.model_copy(update={"n_ctx": 2048})
    ).total
    with pytest.raises(errors.ConfigurationError) as refused:
        capacity.check_processes_fit(
            small_gguf, settings, 1, capacity.SYSTEM_RESERVE_BYTES + fits_at_2048
        )
    assert "x (4 sequences + 1)" in refused.value.message
    assert "1 fit at n_ctx=2048" in refused.value.message
