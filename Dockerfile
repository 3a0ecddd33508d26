# tali on CPU: the package with every extra a cluster job needs (Ray Data, DuckDB, the CLI),
# torch from its CPU index, and the README's two commands working inside the image:
#   docker build -t tali .
#   docker run --rm tali make demo        # builds the sample dataset, streams aligned batches
#   docker run --rm tali make test        # the whole suite: first installs the dev extras (PyPI) and
#                                         # Debian's chromium + FFmpeg 5 libraries (apt), so it needs network
# Same image on every node of a Ray cluster; build args and the recipe: docs/DOCKER.md.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    TALI_CACHE_DIR=/var/cache/tali

# make for the README commands (the base's Python has venv). `make test` apt-installs what its tests
# need (chromium, FFmpeg 5 for torchcodec) itself, as on any fresh machine.
RUN apt-get update \
 && apt-get install -y --no-install-recommends make procps \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/tali
# The Makefile's venv, built now so `make demo` starts at once. CPU torch first, in its own layer (the
# biggest download, kept in the build cache while the sources change); its own index keeps the CUDA
# wheels out.
# TORCH_PIP_ARGS: where the CPU wheel comes from (an offline build: "--find-links /wheels"
# with `podman build -v /path/to/wheels:/wheels`).
# PIP_CERT: a CA bundle for a TLS-intercepting proxy (mounted with -v at build time).
ARG PIP_CERT
ARG TORCH=torch==2.13.0
ARG TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
RUN python3 -m venv .venv \
 && .venv/bin/pip install "${TORCH}" ${TORCH_PIP_ARGS}

# The whole checkout (.dockerignore leaves out .git and local state): `make test` needs tests/, docs/,
# examples/, notebooks/ and benchmarks/ next to src/. Then tali with the cluster extras.
COPY . .
RUN .venv/bin/pip install -e ".[ray,quality,observe]" \
 && touch .venv/.core \
 && .venv/bin/python -c "import tali, ray, torch; assert '+cpu' in torch.__version__ or not torch.cuda.is_available()"

ENV PATH=/opt/tali/.venv/bin:$PATH
CMD ["tali", "--help"]
