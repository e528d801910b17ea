#!/usr/bin/env bash
# Mamba and Mamba-2 against the Transformer at ~10M parameters: training tokens/s at seq
# 512 (same run), peak training memory at seq 2048 (one process per model, with and
# without --recompute). Writes bench/results/{train_small_seq512,train_memory_seq2048_*}.json.
set -euo pipefail
cd "$(dirname "$0")/.."
B=./build/bench_lm
OUT=bench/results
mkdir -p "$OUT"
$B --models transformer-small,mamba-small,mamba2-small --skip-infer \
   --out "$OUT/train_small_seq512.json" > /dev/null
for rc in "" "--recompute"; do
  for m in transformer-small mamba-small mamba2-small; do
    $B --models "$m" --skip-train --skip-infer --memory-seq 2048 $rc \
       --out "$OUT/train_memory_seq2048_${m}${rc}.json" > /dev/null
  done
done
