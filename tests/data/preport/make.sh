#!/usr/bin/env bash
# Regenerates the fixtures written by the last build before the shared block stack
# (commit 435c698): for each architecture a tiny model, a state file saved after a prompt,
# and the greedy continuation that build produced from it. cli_test.sh checks that the
# current build loads each state and continues identically.
# Usage: make.sh PATH_TO_OLD_postformer
set -euo pipefail
OLD="$1"
HERE="$(cd "$(dirname "$0")" && pwd)"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for i in $(seq 1 200); do echo "In the beginning was the word, line $i."; done > "$TMP/text.txt"
for arch in transformer mamba mamba2 retnet; do
  "$OLD" train --arch $arch --d-model 16 --layers 1 --heads 2 --d-state 8 --headdim 8 --ffn 24 \
    --context 64 --data "$TMP/text.txt" --out "$TMP/$arch" --seq 16 --batch 2 --steps 2 \
    --eval-every 2 --eval-batches 1 --threads 1 > /dev/null
  d="$HERE/$arch"
  mkdir -p "$d"
  ck="$TMP/$arch/$(cat "$TMP/$arch/latest")"
  cp "$ck/config.json" "$ck/model.safetensors" "$d/"
  "$OLD" generate --model "$d" --prompt "In the begin" --max-tokens 0 --context 64 \
    --save-state "$d/state.st" > /dev/null
  "$OLD" generate --model "$d" --load-state "$d/state.st" --max-tokens 8 --temperature 0 \
    --context 64 --print-ids > "$d/continuation.txt"
done
