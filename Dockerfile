# tali on CPU: the package with every extra a cluster job needs (Ray Data, DuckDB, the CLI),
# torch from its CPU index, and the README's two commands working inside the image:
#   docker build -t tali .
#   docker run --rm tali make demo        # builds the sample dataset, streams aligned batches
#   docker run --rm tali make test        # the whole suite (installs the dev extras first)
# Same image on every node of a Ray cluster: see docs/SCALE.md.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    TALI_CACHE_DIR=/var/cache/tali

# make + venv for the README commands; ffmpeg's libraries for torchcodec in `make test`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make python3-venv procps \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/tali
COPY pyproject.toml README.md Makefile ./
COPY scripts ./scripts
COPY src ./src
COPY tests ./tests
COPY benchmarks ./benchmarks
COPY docs ./docs

# The Makefile's venv, built now so `make demo` starts at once: CPU torch first (its own index
# keeps the CUDA wheels out), then tali with the cluster extras.
# TORCH_PIP_ARGS: where the CPU wheel comes from (an offline build: "--find-links /wheels"
# with `podman build -v /path/to/wheels:/wheels`).
# PIP_CERT: a CA bundle for a TLS-intercepting proxy (mounted with -v at build time).
ARG PIP_CERT
ARG TORCH=torch==2.13.0
ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
RUN python3 -m venv .venv \
 && .venv/bin/pip install "${TORCH}" ${TORCH_PIP_ARGS} \
 && .venv/bin/pip install -e ".[ray,quality,observe]" \
 && touch .venv/.core \
 && .venv/bin/python -c "import tali, ray, torch; assert '+cpu' in torch.__version__ or not torch.cuda.is_available()"

ENV PATH=/opt/tali/.venv/bin:$PATH
CMD ["tali", "--help"]
