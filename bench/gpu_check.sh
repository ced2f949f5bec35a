#!/usr/bin/env bash
# One GPU check (< 9 min on one H100): prints a table of
#   - descriptor extraction throughput, Qwen3-VL-8B architecture with random bf16 weights: batched vs one at a time
#   - one FSDP2 training step: tokens/s and MFU for Qwen3-VL-2B and -8B shapes (8B: 18 of its 36 LLM layers)
#   - evaluation questions/s (Qwen3-VL-2B architecture, the paper's frame/pixel contract)
# No download: the architectures come from bench/qwen3vl_configs.py, the tokenizer/processor from the tiny model.
#
#   bash bench/gpu_check.sh            # on one GPU
#   bash bench/gpu_check.sh --dry      # CPU, tiny models, a few seconds per row: checks the script itself
# Results: bench/results/gpu_check/ (JSON per measurement, table.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=${GPU_CHECK_OUT:-bench/results/gpu_check}
WORK=${GPU_CHECK_WORK:-/tmp/gdo_gpu_check}
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.jsonl
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
SET=(--set "output_root=$WORK")
step() {  # step <seconds> <label> <command...>: one measurement, bounded in time; a failure is reported, not fatal
  local limit=$1 label=$2; shift 2
  echo "== $label" >&2
  if ! timeout "$limit" "$@" > "$OUT/$label.log" 2>&1; then
    echo "   FAILED or timed out after ${limit}s: tail of $OUT/$label.log" >&2
    tail -5 "$OUT/$label.log" >&2
  fi
}
if [[ "${1:-}" == "--dry" ]]; then
  step 300 descriptors "$PY" bench/descriptors.py "${SET[@]}" --n 4 --batch-size 2 --frames 4 --sc-tokens 4 \
    --out "$OUT/descriptors.json"
  step 120 train_tiny "$PY" bench/train.py --tiny --fsdp --steps 1 --warmup 0 --frames 2 --side 64 \
    --out "$OUT/train_tiny.jsonl"
  step 300 evaluate "$PY" bench/evaluate.py "${SET[@]}" --n 2 --batch-size 2 --out "$OUT/evaluate.json"
else
  step 200 descriptors "$PY" bench/descriptors.py "${SET[@]}" --model qwen3vl-8b-random --device cuda --n 16 \
    --batch-size 8 --out "$OUT/descriptors.json"
  step 100 train_2b "$PY" bench/train.py --model 2b --fsdp --steps 5 --warmup 2 --out "$OUT/train_2b.jsonl"
  step 130 train_8b "$PY" bench/train.py --model 8b --text-layers 18 --fsdp --steps 4 --warmup 2 \
    --out "$OUT/train_8b.jsonl"
  step 90 evaluate "$PY" bench/evaluate.py "${SET[@]}" --model qwen3vl-2b-random --device cuda --paper-pixels \
    --n 8 --batch-size 4 --out "$OUT/evaluate.json"
fi
"$PY" bench/gpu_table.py "$OUT" | tee "$OUT/table.md"
