#!/usr/bin/env bash
# The main job: set up, build, train a small Transformer on the KJV Bible for about
# two minutes, report validation bits per byte, then stream a generated sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
./build/postformer train --data data/kjv.txt --out runs/quickstart \
  --d-model 256 --layers 4 --heads 4 --seq 256 --batch 16 \
  --steps 600 --warmup 30 --lr 2e-3 --time-limit 120 --eval-every 100 --log-every 20
echo "--- sample ---"
./build/postformer generate --model runs/quickstart --prompt "And God said" \
  --max-tokens 400 --temperature 0.7 --top-k 40
