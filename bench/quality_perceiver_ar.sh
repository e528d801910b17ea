#!/usr/bin/env bash
# Perceiver AR (L 2048, M 256) against a Transformer at seq 2048, equal parameters (d 256,
# 4 layers, 4 heads, MLP 688: 3.2M; layer 0 of Perceiver AR is its cross-attention) and
# equal training time (MINUTES each, default 8) on the KJV Bible. Both are scored on the
# held-out last 1% of the text the trainer also holds out: the Transformer by windows of
# 2048 sliding by 256 (every token has at least 1792 tokens of context), Perceiver AR by
# its own sliding window (1920 to 2048). Writes bench/results/quality_perceiver_ar.json.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-8}
BIN=./build/postformer
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
secs=$(python3 -c "print(int($MINUTES * 60))")
n=$(stat -c %s data/kjv.txt)
val=$(( n - (n - n / 100) ))
tail -c "$val" data/kjv.txt > "$TMP/val.txt"
common=(--data data/kjv.txt --d-model 256 --layers 4 --heads 4 --seq 2048 --context 2048
        --time-limit "$secs" --steps 100000 --warmup 30 --eval-every 1000000 --eval-batches 2
        --log-every 50)
$BIN train --arch transformer "${common[@]}" --batch 4 --out "$TMP/transformer" > "$TMP/t.log"
$BIN train --arch perceiver-ar --latents 256 "${common[@]}" --batch 8 --out "$TMP/perceiver" > "$TMP/p.log"
t_all=$($BIN eval --model "$TMP/transformer" --data "$TMP/val.txt" --context 2048)
t_slide=$($BIN eval --model "$TMP/transformer" --data "$TMP/val.txt" --context 2048 --stride 256)
p_slide=$($BIN eval --model "$TMP/perceiver" --data "$TMP/val.txt" --context 2048)
bpb() { sed 's/.*bits per byte \([0-9.]*\).*/\1/' <<< "$1"; }
steps() { grep -o "^done: [0-9]* steps" "$1" | grep -o "[0-9]*"; }
tps() { grep -o "[0-9]* tokens/s" "$1" | tail -1 | grep -o "[0-9]*"; }
cat > bench/results/quality_perceiver_ar.json <<JSON
{
  "benchmark": "quality_perceiver_ar",
  "cpu": "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')",
  "minutes_each": $MINUTES,
  "transformer": {"seq": 2048, "batch": 4, "steps": $(steps "$TMP/t.log"),
                  "train_tokens_per_s": $(tps "$TMP/t.log"),
                  "val_bpb_windows": $(bpb "$t_all"), "val_bpb_sliding_256": $(bpb "$t_slide")},
  "perceiver_ar": {"window": 2048, "latents": 256, "batch": 8, "steps": $(steps "$TMP/p.log"),
                   "train_loss_tokens_per_s": $(tps "$TMP/p.log"),
                   "val_bpb_sliding": $(bpb "$p_slide")}
}
JSON
cat bench/results/quality_perceiver_ar.json
