#!/usr/bin/env bash
# The same classification task, the same front end and the same number of training examples
# for each backbone: Perceiver IO against Mamba, RetNet and a Transformer reading the input as
# a sequence (image patches, audio frames or bytes). Each backbone trains with the classify
# defaults for its kind (Perceiver IO: its default latents; the sequence backbones: d_model 128,
# 4 layers), then is scored on the test split.
# Writes bench/results/classify_<DATA>_<BACKBONE>.json (accuracy, confusion matrix, test
# examples/s, and "train": the run's last progress row with seconds and examples/s).
# Usage: bash bench/classify_backbones.sh DATA STEPS [BACKBONE...] [-- EXTRA TRAIN FLAGS]
#   DATA: fashion-mnist | spoken-digits | bible-sections | a directory
#   e.g.  bash bench/classify_backbones.sh spoken-digits 600 perceiver mamba retnet transformer
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,12p' "$0" >&2; exit 2; }
DATA=$1 STEPS=$2
shift 2
BACKBONES=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do BACKBONES+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#BACKBONES[@]} -gt 0 ] || BACKBONES=(perceiver mamba retnet transformer)
P=./build/postformer
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p bench/results
name=$(basename "$DATA")
for b in "${BACKBONES[@]}"; do
  echo "== $b on $DATA, $STEPS steps"
  $P classify train --data "$DATA" --backbone "$b" --steps "$STEPS" --eval-every 0 \
    --log-every 200 --out "$TMP/$b" "$@"
  $P classify eval --model "$TMP/$b" --confusion none \
    --json "bench/results/classify_${name}_$b.json" | head -1 | sed "s/^/$b: /" | tee -a "$TMP/summary"
done
echo "== summary ($DATA, $STEPS steps each)"
cat "$TMP/summary"
