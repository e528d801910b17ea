#!/usr/bin/env bash
# MQAR (Zoology's set-up at CPU scale): a 2-layer Transformer and a 4-layer Mamba of d_model
# 64 (0.12M and 0.15M parameters), trained on 64-token sequences with 4, 8 or 16 key-value
# pairs over a 256-token vocabulary (Zoology: 8192, 64-512 tokens, 64 epochs of 100k
# sequences; here 6000 steps of 64 sequences, 6% of that), scored at each pair count.
# Writes bench/results/mqar_{transformer,mamba}.json.
# Usage: bash bench/tasks_mqar.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-6000}
P=./build/postformer
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p bench/results
for arch in transformer mamba; do
  layers=2
  [ "$arch" = mamba ] && layers=4
  $P task train --task mqar --task-vocab 256 --pairs 4,8,16 --arch "$arch" --d-model 64 \
    --layers "$layers" --heads 2 --seq 64 --batch 64 --steps "$STEPS" --lr 2e-3 --warmup 100 \
    --eval-every 0 --log-every 500 --eval-sequences 128 --out "$TMP/$arch"
  $P task eval --model "$TMP/$arch" --lengths 64 --sequences 128 \
    --json "bench/results/mqar_$arch.json"
done
