#!/usr/bin/env bash
# Perceiver AR against a Transformer of equal parameters (both 10.7M: d 384, 6 layers, 6
# heads, MLP 1024; Perceiver AR's layer 0 is its cross-attention): training tokens/s
# counting tokens with a loss (Perceiver AR: its M = 512 latents per window), both models in
# the same run, at L = 1k, 4k, 8k and 16k with 8192 (or L) input tokens per step; peak
# training memory, one process per model and length; decode ms/token as the context grows
# (Perceiver AR with an 8k window; 300 tokens, so its re-encodings are in the mean), and the
# latent stack alone for the bound in the README.
# Writes bench/results/perceiver_ar_*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
B=./build/bench_lm
OUT=bench/results
mkdir -p "$OUT"
for L in 1024 4096 8192 16384; do
  batch=$(( L >= 8192 ? 1 : 8192 / L ))
  $B --models transformer-small,perceiver-ar-small --latents 512 --skip-infer --train-seq "$L" \
     --batch "$batch" --train-steps 2 --out "$OUT/perceiver_ar_train_L$L.json" > /dev/null
  for m in transformer-small perceiver-ar-small; do
    $B --models "$m" --latents 512 --skip-train --skip-infer --train-seq "$L" --memory-seq "$L" \
       --memory-batch 1 --out "$OUT/perceiver_ar_memory_${m}_L$L.json" > /dev/null
  done
done
# The latent stack alone (L = M = 512, i.e. a 512-token Transformer), 512 rows per step as at
# 8k and 16k: what training would cost per loss token if the cross layer were free.
$B --models transformer-small,perceiver-ar-small --latents 512 --skip-infer --train-seq 512 \
   --batch 1 --train-steps 6 --out "$OUT/perceiver_ar_train_latents_only.json" > /dev/null
$B --models transformer-small,perceiver-ar-small --latents 512 --train-seq 8192 --skip-train \
   --decode-contexts 1024,2048,4096,8192,16000 --decode 300 --reps 2 --prefill 1024 \
   --out "$OUT/perceiver_ar_decode.json" > /dev/null
