#!/usr/bin/env bash
# RetNet against the Transformer at ~10M parameters: training tokens/s at seq 512, 2048
# and 8192 (8192 tokens per step, both models in the same run), peak training memory
# (one process per model and length), and decode ms/token as the context grows.
# Writes bench/results/retnet_vs_transformer_*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
B=./build/bench_lm
OUT=bench/results
mkdir -p "$OUT"
for seq in 512 2048 8192; do
  batch=$((8192 / seq))
  $B --models transformer-small,retnet-small --skip-infer --train-seq "$seq" --batch "$batch" \
     --train-steps 2 --out "$OUT/retnet_vs_transformer_train_seq$seq.json" > /dev/null
  for m in transformer-small retnet-small; do
    $B --models "$m" --skip-train --skip-infer --memory-seq "$seq" --memory-batch "$batch" \
       --out "$OUT/retnet_vs_transformer_memory_${m}_seq$seq.json" > /dev/null
  done
done
$B --models transformer-small,retnet-small --skip-train --decode-contexts 128,1024,4096,16384 \
   --decode 128 --out "$OUT/retnet_vs_transformer_decode.json" > /dev/null
