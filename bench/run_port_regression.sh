#!/usr/bin/env bash
# The block-stack port against the build before it: training tokens/s and decode ms/token
# of the four architectures, both builds alternating in one run (bench/bench_builds.cpp),
# plus aggregate decode tokens/s at 1, 4, 16 and 64 concurrent sequences (new build).
# Usage: bash bench/run_port_regression.sh [BASE_COMMIT]   (default: the last pre-port commit)
# Writes bench/results/port_regression_{decode,train}.json and concurrent_decode.json.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:-435c698}
SRC=build-preport-src
if [ ! -d "$SRC" ]; then git worktree add --detach "$SRC" "$BASE" >/dev/null; fi
cmake -S "$SRC" -B "$SRC/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$SRC/build" bench_lm >/dev/null
ninja -C build bench_lm bench_builds >/dev/null
mkdir -p bench/results
M=transformer-small,mamba-small,mamba2-small,retnet-small
./build/bench_builds --old "$SRC/build/bench_lm" --new ./build/bench_lm --models $M --rounds 7 \
  --args "--skip-train --prefill 64 --decode 256" --out bench/results/port_regression_decode.json > /dev/null
./build/bench_builds --old "$SRC/build/bench_lm" --new ./build/bench_lm --models $M --rounds 5 \
  --args "--skip-infer --train-seq 512 --batch 8 --train-steps 3" \
  --out bench/results/port_regression_train.json > /dev/null
./build/bench_lm --models transformer-small,mamba-small,mamba2-small,retnet-small,jamba-small \
  --skip-train --concurrent 1,4,16,64 --prefill 64 --decode 32 --reps 3 \
  --out bench/results/concurrent_decode.json > /dev/null
