#!/usr/bin/env bash
# A Jamba-style hybrid against Mamba at ~10M parameters and equal tokens on the default
# corpus: same data, seed, batches and schedule; prints validation bits per byte and writes
# bench/results/quality_hybrid.json.
# Usage: bash bench/quality_hybrid.sh [STEPS]   (default 200 steps of 16 x 256 tokens)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-200}
P=./build/postformer
OUT=bench/results
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
common=(--data data/kjv.txt --steps "$STEPS" --batch 16 --seq 256 --lr 2e-3 --warmup 20
        --eval-every "$STEPS" --eval-batches 16 --log-every 50 --seed 1)
declare -A shape=(
  [mamba]="--arch mamba --d-model 384 --layers 11"
  [jamba]="--config configs/jamba-small.json"
)
echo "{" > "$TMP/q.json"
first=1
for arch in mamba jamba; do
  # shellcheck disable=SC2086
  $P train ${shape[$arch]} "${common[@]}" --out "$TMP/$arch" | tee "$TMP/$arch.log"
  params=$(grep -o '[0-9.]*M parameters' "$TMP/$arch.log" | head -1 | cut -dM -f1)
  bpb=$(grep -o 'validation [0-9.]* bits per byte' "$TMP/$arch.log" | tail -1 | awk '{print $2}')
  [ $first -eq 1 ] || echo "," >> "$TMP/q.json"
  first=0
  printf '  "%s": {"params_millions": %s, "val_bpb": %s, "steps": %s, "tokens": %s}' \
    "$arch" "$params" "$bpb" "$STEPS" $((STEPS * 16 * 256)) >> "$TMP/q.json"
done
printf '\n}\n' >> "$TMP/q.json"
mkdir -p "$OUT"
cp "$TMP/q.json" "$OUT/quality_hybrid.json"
cat "$OUT/quality_hybrid.json"
