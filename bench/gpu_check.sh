#!/usr/bin/env bash
# The GPU check, in one run on one GPU machine (≈ 6 minutes): bf16-vs-fp32 correctness, then
# end-to-end score_gpu throughput for SmolLM2-135M and Llama-1.1B architectures with the naive and
# padded baselines, then variants (packed rows, larger batches, torch.compile) while time remains,
# then a 10M-token scale run. Everything it measures lands in $OUT (results.jsonl, gpu_summary.json,
# gpu_check.log); append results.jsonl to bench/results.jsonl and run `python -m bench.common`.
#
# Needs Python ≥ 3.10 with torch (CUDA), transformers ≥ 5, numpy, safetensors, tokenizers; the
# database packages come as wheels in .whl/ when missing (`bash bench/gpu_wheels.sh` fetches them here).
# Smoke test on a CPU: BENCH_SMOKE=1 OUT=/tmp/out bash bench/gpu_check.sh
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=true
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import sqlalchemy, pydantic_settings" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
{
  echo "== $(date -u +%FT%TZ) $(git rev-parse --short HEAD 2>/dev/null || echo no-git)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PYTHON" -c "import torch, transformers, sqlalchemy, pydantic; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| transformers', transformers.__version__, '| sqlalchemy', sqlalchemy.__version__, '| pydantic', pydantic.__version__)"
  BENCH_RESULTS="$OUT/results.jsonl" BENCH_SUMMARY="$OUT/gpu_summary.json" BENCH_BUDGET_S="${BENCH_BUDGET_S:-270}" \
    timeout -k 10 "${BENCH_TIMEOUT_S:-345}" "$PYTHON" -m bench.score_gpu
  echo "== exit $?"
} 2>&1 | tee "$OUT/gpu_check.log"
