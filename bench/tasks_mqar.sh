#!/usr/bin/env bash
# MQAR (Zoology): Transformer, Mamba, Mamba-2 and RetNet of d_model 64, 2 attention layers
# (4 Mamba layers), trained on sequences of 128 tokens holding 4-32 key-value pairs and
# scored at each pair count. Vocabulary 1024 by default (Zoology uses 8192: on 2 CPU cores
# its logits would be most of the run). Writes bench/results/mqar_<arch>.json.
# Usage: bash bench/tasks_mqar.sh [STEPS] [VOCAB]
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-1500}
V=${2:-1024}
P=./build/postformer
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p bench/results
declare -A layers=([transformer]=2 [retnet]=2 [mamba]=4 [mamba2]=4)
for arch in transformer mamba mamba2 retnet; do
  extra=()
  [ "$arch" = mamba2 ] && extra=(--headdim 32)
  $P task train --task mqar --task-vocab "$V" --pairs 4,8,16,32 --arch "$arch" --d-model 64 \
    --layers "${layers[$arch]}" --heads 2 "${extra[@]}" --seq 128 --batch 32 --steps "$STEPS" \
    --lr 3e-3 --warmup 100 --eval-every 0 --log-every 250 --out "$TMP/$arch"
  $P task eval --model "$TMP/$arch" --lengths 128 --sequences 256 \
    --json "bench/results/mqar_$arch.json"
done
