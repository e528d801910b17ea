#!/usr/bin/env bash
# Induction heads, trained at 256 and scored up to 64x that (../shared/SPEC.md): 2-layer
# d_model 64 Mamba and Transformer. Both train with a length curriculum, 64 then 256 tokens
# (the 64-token stage reaches the task's phase transition in seconds; from scratch at 256 it
# takes thousands of steps on a CPU). Writes bench/results/induction_{mamba,transformer}.json.
# Usage: bash bench/tasks_induction.sh [STAGE1_STEPS] [STAGE2_STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
S1=${1:-1500}
S2=${2:-400}
P=./build/postformer
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p bench/results
for arch in mamba transformer; do
  shape=(--arch "$arch" --d-model 64 --layers 2 --heads 2 --context 16384)
  $P task train --task induction "${shape[@]}" --seq 64 --batch 64 --steps "$S1" --lr 3e-3 \
    --warmup 50 --eval-every 0 --log-every 250 --out "$TMP/$arch-64"
  $P task train --task induction --init-from "$TMP/$arch-64" --seq 256 --batch 32 --steps "$S2" \
    --lr 1e-3 --warmup 20 --eval-every 0 --log-every 100 --out "$TMP/$arch"
  $P task eval --model "$TMP/$arch" --lengths 256,1024,4096,16384 --sequences 64 \
    --json "bench/results/induction_$arch.json"
done
