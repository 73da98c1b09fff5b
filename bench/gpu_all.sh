#!/usr/bin/env bash
# The whole GPU session in one call (≈ 8 minutes): scoring (bench/gpu_check.sh: correctness,
# score_gpu with baselines and variants, 10M-token scale run), then training throughput and MFU of
# the `base` preset with CE and focal loss, compiled, fused and plain LM head (bench/train.py).
# Results land in $OUT: results.jsonl (both benches), gpu_summary.json, train_gpu.json, logs, and
# operator profiles (profile-*.txt: where a scoring pass and a training update spend their time).
# Smoke test on a CPU: BENCH_SMOKE=1 OUT=/tmp/out bash bench/gpu_all.sh
set -u
cd "$(dirname "$0")/.."
export OUT="${OUT:-bench/out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PYTHON="${PYTHON:-python3}"
BENCH_PROFILE_DIR="$OUT" BENCH_BUDGET_S="${BENCH_BUDGET_S:-240}" BENCH_TIMEOUT_S="${BENCH_TIMEOUT_S:-300}" bash bench/gpu_check.sh
if [ "${BENCH_SMOKE:-}" = 1 ]; then
  train_args=(--device cpu --preset tiny --steps 2 --warmup 1 --compile off --head both --batch-size 4 --seq-len 64)
else
  # Compiled only (eager was measured in the first GPU session): fused vs plain head, CE vs focal.
  train_args=(--device cuda --preset base --steps 20 --warmup 5 --compile on --head both)
fi
PYTHONPATH="$PWD" BENCH_RESULTS="$OUT/results.jsonl" timeout -k 10 "${TRAIN_TIMEOUT_S:-200}" \
  "$PYTHON" -m bench.train "${train_args[@]}" --json "$OUT/train_gpu.json" --profile "$OUT" 2>&1 | tee "$OUT/train_gpu.log"
echo "== done $(date -u +%FT%TZ)"
