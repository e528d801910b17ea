#!/usr/bin/env bash
# Quality at equal parameters and tokens: a Transformer and a RetNet (and Mamba) of
# ~3.2M parameters trained with the same data, seed, batches and schedule on the
# default corpus; prints validation bits per byte and writes bench/results/quality_kjv.json.
# Usage: bash bench/quality_kjv.sh [STEPS]   (default 300 steps of 16 x 256 tokens)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-300}
P=./build/postformer
OUT=bench/results
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
common=(--data data/kjv.txt --steps "$STEPS" --batch 16 --seq 256 --lr 2e-3 --warmup 20
        --eval-every "$STEPS" --eval-batches 16 --log-every 50 --seed 1 --context 256)
declare -A shape=(
  [transformer]="--arch transformer --d-model 256 --layers 4 --heads 4 --ffn 688"
  [retnet]="--arch retnet --d-model 256 --layers 4 --heads 4 --ffn 344"
  [mamba]="--arch mamba --d-model 256 --layers 7"
)
echo "{" > "$TMP/q.json"
first=1
for arch in transformer retnet mamba; do
  # shellcheck disable=SC2086
  $P train ${shape[$arch]} "${common[@]}" --out "$TMP/$arch" | tee "$TMP/$arch.log"
  params=$(grep -o '[0-9.]*M parameters' "$TMP/$arch.log" | head -1 | cut -dM -f1)
  bpb=$(grep -o 'validation [0-9.]* bits per byte' "$TMP/$arch.log" | awk '{print $2}')
  [ $first -eq 1 ] || echo "," >> "$TMP/q.json"
  first=0
  printf '  "%s": {"params_millions": %s, "val_bpb": %s, "steps": %s, "tokens": %s}' \
    "$arch" "$params" "$bpb" "$STEPS" $((STEPS * 16 * 256)) >> "$TMP/q.json"
done
printf '\n}\n' >> "$TMP/q.json"
mkdir -p "$OUT"
cp "$TMP/q.json" "$OUT/quality_kjv.json"
cat "$OUT/quality_kjv.json"
