#!/usr/bin/env bash
# The main job: set up, build, train a small Transformer on the KJV Bible for about
# two minutes, report validation bits per byte, then stream a generated sample. Each run
# replaces the last one's checkpoint in runs/quickstart (--overwrite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/postformer train --data data/kjv.txt --out runs/quickstart --overwrite \
  --d-model 256 --layers 4 --heads 4 --seq 256 --batch 16 \
  --steps 230 --warmup 20 --lr 2e-3 --time-limit 150 --eval-every 50 --log-every 10
echo "--- sample ---"
./build/postformer generate --model runs/quickstart --prompt "And God said" \
  --max-tokens 400 --temperature 0.7 --top-k 40
